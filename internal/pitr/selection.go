package pitr

import (
	"strings"

	"github.com/mongomigrate/observability/internal/oplogstore"
)

// selection is the --namespace list: "db.coll", or "db" (or "db.*") for a database.
type selection []string

// has tells whether the namespace db.coll is selected (coll "" for a database: any of
// its selected namespaces).
func (s selection) has(db, coll string) bool {
	if len(s) == 0 {
		return true
	}
	for _, ns := range s {
		sdb, scoll, _ := strings.Cut(ns, ".")
		if sdb == db && (scoll == "" || scoll == "*" || coll == "" || scoll == coll) {
			return true
		}
	}
	return false
}

// whole tells whether all of database db is selected.
func (s selection) whole(db string) bool {
	if len(s) == 0 {
		return true
	}
	for _, ns := range s {
		sdb, scoll, _ := strings.Cut(ns, ".")
		if sdb == db && (scoll == "" || scoll == "*") {
			return true
		}
	}
	return false
}

// selected tells whether e is in the --namespace selection: its namespace, the target
// of a rename, or, for a database's event, any selected namespace of that database.
func selected(e *oplogstore.Event, namespaces selection) bool {
	if namespaces.has(e.DB, e.Coll) {
		return true
	}
	if e.OpType == "rename" {
		db, _ := e.To.Lookup("db").StringValueOK()
		coll, _ := e.To.Lookup("coll").StringValueOK()
		return namespaces.has(db, coll)
	}
	return false
}
