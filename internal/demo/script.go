package demo

import "time"

// The migration the demo walks through, again and again: a sharded source migrated by
// two mongosync instances (shard0 and shard1, one per shard) and checked by one
// migration-verifier per shard. Times are from the start of a cycle. The demo joins the
// first cycle at joinAt, so that from the first scrape shard0 applies change events
// while shard1 still copies, and shard0's verifier rechecks while shard1's still runs its
// initial check: every panel has something to show at once. Then shard1 finishes its
// copy and catches up, a burst of writes raises the lag for a minute, the migration
// commits, and after a pause a new migration starts from IDLE, with new verifiers.
const (
	cycleLength = 17*time.Minute + 30*time.Second
	joinAt      = 3*time.Minute + 30*time.Second

	copyStart   = 20 * time.Second // IDLE before
	burstStart  = 12*time.Minute + 30*time.Second
	burstPeak   = burstStart + 30*time.Second
	burstEnd    = burstStart + time.Minute
	commitAt    = 14*time.Minute + 30*time.Second // COMMITTING
	committedAt = commitAt + 30*time.Second

	migrationName = "orders"
	// totalBytes is mongosync's estimate of the bytes to copy, the same on every
	// instance; totalDocuments is what the embedded verifier estimates.
	totalBytes     = 48 << 30
	totalDocuments = 64_000_000
	steadyLag      = 3.0  // seconds: mongosync's no-op writes keep it above 0
	burstLag       = 95.0 // seconds, at burstPeak
	drainRate      = 2400 // change events applied per second while draining
	steadyRate     = 35   // per second afterwards
)

// instanceScript is one mongosync instance's part of the migration.
type instanceScript struct {
	name     string
	share    float64       // of the bytes and documents to copy
	copyEnd  time.Duration // its share copied: change event application starts
	drainEnd time.Duration // the events buffered during the copy applied: steady state
	drainLag float64       // lag in seconds when change event application starts
	indexes  int           // built after the copy (buildIndexes afterDataCopy)
	// oplogDuringCopy is how much source oplog time mongosync says is left while it
	// copies, and warning what it warns of then (none when empty).
	oplogDuringCopy, warning string
}

var instances = []instanceScript{
	{name: "shard0", share: 0.3, copyEnd: 3 * time.Minute, drainEnd: 7*time.Minute + 30*time.Second, drainLag: 420, indexes: 14,
		oplogDuringCopy: "more than 72 hours"},
	// shard1 copies for longer than the 5 minutes the alerts on its oplog and warning wait
	// after the demo starts: they fire.
	{name: "shard1", share: 0.7, copyEnd: 9*time.Minute + 30*time.Second, drainEnd: 11*time.Minute + 30*time.Second, drainLag: 260, indexes: 26,
		oplogDuringCopy: "12 hours", warning: "the source oplog is smaller than recommended for the collection copy"},
}

// coordinator is the instance whose canWrite counts (the first one).
var coordinator = instances[0].name

// verifierScript is one migration-verifier's part: its initial check (generation 0)
// runs from gen0Start to gen0End, then it rechecks one generation every recheckEvery.
type verifierScript struct {
	name             string
	database         string // its --metaDBName
	gen0Start        time.Duration
	gen0End          time.Duration
	namespaces       []namespaceScript
	metadataMismatch string // a namespace whose indexes differ (a verifyCollection mismatch)
}

// namespaceScript is a collection the verifier compares; the documents of its partition
// mismatchPartition (counted from 1; 0 for none) mismatch in generation 0, and the content
// mismatch among them lasts until generation contentFixedIn.
type namespaceScript struct {
	name              string
	documents, bytes  int64
	partitions        int
	mismatchPartition int
	missing           int // documents missing on the destination
	contentFixedIn    int32
}

const recheckEvery = 40 * time.Second

var verifiers = []verifierScript{
	{name: "shard0", database: "verifier_shard0", gen0Start: 30 * time.Second, gen0End: 3 * time.Minute,
		namespaces: []namespaceScript{
			{name: "shop.orders", documents: 600_000, bytes: 300 << 20, partitions: 6, mismatchPartition: 3, missing: 2, contentFixedIn: 6},
			{name: "shop.users", documents: 50_000, bytes: 20 << 20, partitions: 1},
			{name: "shop.carts", documents: 100_000, bytes: 40 << 20, partitions: 2},
		}},
	{name: "shard1", database: "verifier_shard1", gen0Start: 30 * time.Second, gen0End: 10 * time.Minute,
		metadataMismatch: "shop.products",
		namespaces: []namespaceScript{
			{name: "shop.orders", documents: 1_400_000, bytes: 700 << 20, partitions: 14},
			{name: "shop.products", documents: 20_000, bytes: 16 << 20, partitions: 1},
			{name: "shop.carts", documents: 230_000, bytes: 92 << 20, partitions: 3, mismatchPartition: 2, missing: 1},
		}},
}
