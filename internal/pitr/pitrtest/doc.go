// Package pitrtest holds what the tests of point-in-time recovery share: the state of a
// cluster as documents and index specifications, read through the driver, and the
// comparison of two states (state.go); random values and update operators for
// workloads (random.go); and a mongotestd, the test MongoDB server, run as a process of
// its own (server.go). Production code never imports it (deploy's
// TestProductBinariesLinkNoTestInfrastructure holds that).
package pitrtest
