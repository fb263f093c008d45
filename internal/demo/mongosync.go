package demo

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"
)

// The simulated mongosync: GET /<instance>/api/v1/progress answers what the instance's
// script says at this moment, in the shape of mongosync 1.22's progress API
// (docs/mongosync.md). Where MongoDB's documentation is silent the simulation chooses:
// the lag is null during the collection copy (no event applied yet), and the index
// builds are reported from the end of the copy to the commit.

type progressReply struct {
	Progress progress `json:"progress"`
	Success  bool     `json:"success"`
}

// progress holds the fields of GET /api/v1/progress; a nil pointer is a null, and the
// fields with omitempty are absent when mongosync leaves them out.
type progress struct {
	State                        string            `json:"state"`
	CanCommit                    bool              `json:"canCommit"`
	CanWrite                     *bool             `json:"canWrite"`
	Info                         *string           `json:"info"`
	CEAStage                     *string           `json:"ceaStage,omitempty"`
	Lag                          *lag              `json:"lag"`
	LagTimeSeconds               *int64            `json:"lagTimeSeconds"`
	TotalEventsApplied           *int64            `json:"totalEventsApplied"`
	CollectionCopy               *collectionCopy   `json:"collectionCopy"`
	DirectionMapping             *directionMapping `json:"directionMapping"`
	MongosyncID                  *string           `json:"mongosyncID"`
	CoordinatorID                *string           `json:"coordinatorID"`
	EstimatedSecondsToCEACatchup *int64            `json:"estimatedSecondsToCEACatchup,omitempty"`
	EstimatedOplogTimeRemaining  *string           `json:"estimatedOplogTimeRemaining,omitempty"`
	Warnings                     []string          `json:"warnings,omitempty"`
	IndexBuilding                *indexBuilding    `json:"indexBuilding,omitempty"`
	Source                       *ping             `json:"source,omitempty"`
	Destination                  *ping             `json:"destination,omitempty"`
	Verification                 *verification     `json:"verification,omitempty"`
}

type lag struct {
	Overall int64  `json:"overallLagSeconds"`
	CRUD    int64  `json:"crudLagSeconds"`
	DDL     *int64 `json:"ddlLagSeconds"`
}

type collectionCopy struct {
	EstimatedTotalBytes  int64 `json:"estimatedTotalBytes"`
	EstimatedCopiedBytes int64 `json:"estimatedCopiedBytes"`
}

type directionMapping struct {
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
}

type indexBuilding struct {
	IndexesBuilt        int `json:"indexesBuilt"`
	TotalIndexesToBuild int `json:"totalIndexesToBuild"`
	CollectionsFinished int `json:"collectionsFinished"`
	CollectionsTotal    int `json:"collectionsTotal"`
}

type ping struct {
	PingLatencyMs int64 `json:"pingLatencyMs"`
}

type verification struct {
	Source      embeddedVerifier `json:"source"`
	Destination embeddedVerifier `json:"destination"`
}

type embeddedVerifier struct {
	EstimatedDocumentCount int64  `json:"estimatedDocumentCount"`
	HashedDocumentCount    int64  `json:"hashedDocumentCount"`
	LagTimeSeconds         int64  `json:"lagTimeSeconds"`
	TotalCollectionCount   int64  `json:"totalCollectionCount"`
	ScannedCollectionCount int64  `json:"scannedCollectionCount"`
	Phase                  string `json:"phase"`
}

// mongosync answers every scripted instance's progress requests.
type mongosync struct {
	clock                       *clock
	sourceHost, destinationHost string // host:port of the clusters, for directionMapping
}

func (m *mongosync) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	for _, in := range instances {
		if in.name == name && rest == "api/v1/progress" && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(progressReply{Progress: m.progress(in, m.clock.inCycle(time.Now())), Success: true})
			return
		}
	}
	http.Error(w, "the simulated mongosync serves GET /<instance>/api/v1/progress only", http.StatusNotFound)
}

// phase names where an instance is in its script at t, for the progress and the log.
type phase int

const (
	phaseIdle phase = iota
	phaseCopy
	phaseDrain
	phaseSteady
	phaseCommitting
	phaseCommitted
)

func (in instanceScript) phase(t time.Duration) phase {
	switch {
	case t < copyStart:
		return phaseIdle
	case t < in.copyEnd:
		return phaseCopy
	case t < in.drainEnd:
		return phaseDrain
	case t < commitAt:
		return phaseSteady
	case t < committedAt:
		return phaseCommitting
	}
	return phaseCommitted
}

// lagAt is the lag in seconds at t and, while it falls towards the steady lag, the
// seconds until it gets there (mongosync's catch-up estimate); nil lag before the first
// event is applied.
func (in instanceScript) lagAt(t time.Duration) (lagSeconds *float64, catchUp *time.Duration) {
	var l float64
	var left time.Duration = -1
	switch in.phase(t) {
	case phaseIdle, phaseCopy:
		return nil, nil
	case phaseDrain:
		done := fraction(t-in.copyEnd, in.drainEnd-in.copyEnd)
		l, left = steadyLag+(in.drainLag-steadyLag)*(1-done), in.drainEnd-t
	case phaseSteady:
		l = steadyLag + 1.5*math.Sin(t.Seconds()/20)
		switch {
		case t >= burstStart && t < burstPeak:
			l += (burstLag - l) * fraction(t-burstStart, burstPeak-burstStart)
		case t >= burstPeak && t < burstEnd:
			l += (burstLag - l) * (1 - fraction(t-burstPeak, burstEnd-burstPeak))
			left = burstEnd - t
		}
	case phaseCommitting:
		l = steadyLag * (1 - fraction(t-commitAt, committedAt-commitAt))
	case phaseCommitted:
		l = 0
	}
	if left >= 0 {
		catchUp = &left
	}
	return &l, catchUp
}

// eventsApplied is the change events applied by t since this mongosync started.
func (in instanceScript) eventsApplied(t time.Duration) int64 {
	var n float64
	if t > in.copyEnd {
		n += drainRate * (min(t, in.drainEnd) - in.copyEnd).Seconds()
	}
	if t > in.drainEnd {
		n += steadyRate * (min(t, commitAt) - in.drainEnd).Seconds()
	}
	return int64(n)
}

// copied is the share of this instance's data copied by t, from 0 to 1.
func (in instanceScript) copied(t time.Duration) float64 {
	return fraction(t-copyStart, in.copyEnd-copyStart)
}

func (m *mongosync) progress(in instanceScript, t time.Duration) progress {
	ph := in.phase(t)
	p := progress{State: "RUNNING"}
	switch ph {
	case phaseIdle:
		return progress{State: "IDLE"} // every other field null
	case phaseCommitting:
		p.State = "COMMITTING"
	case phaseCommitted:
		p.State = "COMMITTED"
	}
	p.Info = ptr(map[phase]string{
		phaseCopy: "collection copy", phaseDrain: "change event application", phaseSteady: "change event application",
		phaseCommitting: "waiting for commit to complete", phaseCommitted: "commit completed",
	}[ph])
	switch ph {
	case phaseDrain:
		p.CEAStage = ptr("collection copy drain")
	case phaseSteady, phaseCommitting:
		p.CEAStage = ptr("steady state")
	}
	lagSeconds, catchUp := in.lagAt(t)
	if lagSeconds != nil {
		overall := int64(math.Round(*lagSeconds))
		p.Lag = &lag{Overall: overall, CRUD: overall}
		p.LagTimeSeconds = &overall
		if ph != phaseCopy { // DDL events (the index builds) applied since the copy
			p.Lag.DDL = ptr(min(overall, 4))
		}
	}
	if catchUp != nil {
		p.EstimatedSecondsToCEACatchup = ptr(int64(catchUp.Seconds()))
	}
	p.TotalEventsApplied = ptr(in.eventsApplied(t))
	share := int64(in.share * totalBytes)
	p.CollectionCopy = &collectionCopy{EstimatedTotalBytes: totalBytes, EstimatedCopiedBytes: int64(float64(share) * in.copied(t))}
	p.DirectionMapping = &directionMapping{Source: "source: " + m.sourceHost, Destination: "destination: " + m.destinationHost}
	p.MongosyncID, p.CoordinatorID = ptr(in.name), ptr(coordinator)
	indexesBuilt := 0
	if ph != phaseCopy {
		indexesBuilt = int(float64(in.indexes) * fraction(t-in.copyEnd, (in.drainEnd-in.copyEnd)*3/5))
		p.IndexBuilding = &indexBuilding{IndexesBuilt: indexesBuilt, TotalIndexesToBuild: in.indexes,
			CollectionsFinished: indexesBuilt / 2, CollectionsTotal: in.indexes / 2}
	}
	p.CanCommit = ph >= phaseSteady && *lagSeconds < 30 && indexesBuilt == in.indexes
	p.CanWrite = ptr(ph == phaseCommitted)
	if ph <= phaseSteady {
		p.EstimatedOplogTimeRemaining = ptr("more than 72 hours")
		if ph == phaseCopy {
			p.EstimatedOplogTimeRemaining = ptr(in.oplogDuringCopy)
			if in.warning != "" {
				p.Warnings = []string{in.warning}
			}
		}
	}
	wobble := math.Sin(t.Seconds() / 7)
	p.Source = &ping{PingLatencyMs: int64(3 + 1.5*wobble)}
	p.Destination = &ping{PingLatencyMs: int64(48 + 6*wobble)}
	p.Verification = in.embeddedVerifier(t)
	return p
}

// embeddedVerifier hashes each side as it is copied, then follows the change stream;
// the destination's side trails the source's.
func (in instanceScript) embeddedVerifier(t time.Duration) *verification {
	documents := int64(in.share * totalDocuments)
	const collections = 120
	side := func(done float64, streaming bool, lagSeconds int64) embeddedVerifier {
		v := embeddedVerifier{EstimatedDocumentCount: documents, HashedDocumentCount: int64(done * float64(documents)),
			LagTimeSeconds: lagSeconds, TotalCollectionCount: collections, ScannedCollectionCount: int64(done * collections), Phase: "initial hashing"}
		if streaming {
			v.Phase = "stream hashing"
		}
		return v
	}
	copied := in.copied(t)
	trailing := fraction(t-copyStart, in.copyEnd+45*time.Second-copyStart)
	return &verification{
		Source:      side(copied, copied == 1, 2),
		Destination: side(trailing, trailing == 1, 5),
	}
}

// fraction is part/whole, clamped to [0, 1].
func fraction(part, whole time.Duration) float64 {
	if whole <= 0 {
		return 1
	}
	return min(1, max(0, float64(part)/float64(whole)))
}

func ptr[T any](v T) *T { return &v }
