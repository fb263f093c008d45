// Package repocheck holds checks of the repository as a whole, run by `make test` and
// `make lint`: the README's layout table matches the tree (every package directory and
// every top-level directory is in it, every path in it exists); every relative Markdown
// link reaches a file and a heading; the product code keeps the limits a reader relies on
// (no function over 80 lines, no file over 450, MongoDB error codes only by name, from
// internal/mongoerr); and commit subjects stay within 72 characters. It has no code of its
// own, and no product binary links it.
package repocheck
