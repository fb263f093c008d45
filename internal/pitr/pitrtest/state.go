package pitrtest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// NotData are the databases a state leaves out: the server's own, the oplog store's and
// the collector metadata's, and replay's bookkeeping on a target.
var NotData = map[string]bool{
	"admin": true, "config": true, "local": true,
	"oplog_backup_db": true, "oplog_manager_orchestrator_db": true, "__oplog_replay": true,
}

// State is every user collection of a cluster: its kind and options (a validator, a
// view's pipeline...), its documents (in _id order, as BSON) and its index specifications
// (by name).
type State map[string]*Collection

// Collection is one collection's options, documents and indexes.
type Collection struct {
	Type    string
	Options bson.Raw
	Docs    []bson.Raw
	Indexes map[string]bson.Raw
}

// Read reads the state of the cluster client is connected to.
func Read(ctx context.Context, client *mongo.Client) (State, error) {
	state := State{}
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	for _, db := range dbs {
		if NotData[db] {
			continue
		}
		specs, err := client.Database(db).ListCollectionSpecifications(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		for _, s := range specs {
			coll := client.Database(db).Collection(s.Name)
			c := &Collection{Type: s.Type, Options: s.Options, Indexes: map[string]bson.Raw{}}
			cursor, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
			if err != nil {
				return nil, err
			}
			if err := cursor.All(ctx, &c.Docs); err != nil {
				return nil, err
			}
			state[db+"."+s.Name] = c
			if s.Type == "view" {
				continue // a view has no indexes; its documents are what its pipeline reads
			}
			cursor, err = coll.Indexes().List(ctx)
			if err != nil {
				return nil, err
			}
			var indexes []bson.Raw
			if err := cursor.All(ctx, &indexes); err != nil {
				return nil, err
			}
			for _, ix := range indexes {
				c.Indexes[ix.Lookup("name").StringValue()] = ix
			}
		}
	}
	return state, nil
}

// Documents counts the documents of the state.
func (s State) Documents() int {
	n := 0
	for _, c := range s {
		n += len(c.Docs)
	}
	return n
}

// Diff describes how got differs from want, "" when it does not: collections missing
// or extra, and per collection the first documents and indexes that differ.
func Diff(want, got State) string {
	var b strings.Builder
	for _, ns := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[ns]
		if !ok {
			fmt.Fprintf(&b, "%s: missing (%d documents)\n", ns, len(want[ns].Docs))
			continue
		}
		diffCollection(&b, ns, want[ns], g)
	}
	for _, ns := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[ns]; !ok {
			fmt.Fprintf(&b, "%s: extra (%d documents)\n", ns, len(got[ns].Docs))
		}
	}
	return b.String()
}

func diffCollection(b *strings.Builder, ns string, want, got *Collection) {
	if want.Type != got.Type {
		fmt.Fprintf(b, "%s: a %s, want a %s\n", ns, got.Type, want.Type)
	}
	if !bytes.Equal(want.Options, got.Options) {
		fmt.Fprintf(b, "%s: options differ:\n   got %s\n  want %s\n", ns, got.Options, want.Options)
	}
	byID := func(docs []bson.Raw) map[string]bson.Raw {
		m := make(map[string]bson.Raw, len(docs))
		for _, d := range docs {
			id := d.Lookup("_id")
			m[string(append([]byte{byte(id.Type)}, id.Value...))] = d
		}
		return m
	}
	w, g := byID(want.Docs), byID(got.Docs)
	shown := 0
	defer func() {
		if shown > 0 && len(want.Options) > 5 { // what the collection is tells why documents differ
			fmt.Fprintf(b, "%s: a collection with the options %s\n", ns, want.Options)
		}
	}()
	for _, k := range slices.Sorted(maps.Keys(w)) {
		if shown >= 5 {
			fmt.Fprintf(b, "%s: ... more documents differ\n", ns)
			break
		}
		switch gd, ok := g[k]; {
		case !ok:
			fmt.Fprintf(b, "%s: missing document %s\n", ns, w[k])
			shown++
		case !bytes.Equal(gd, w[k]):
			fmt.Fprintf(b, "%s: document differs:\n   got %s\n  want %s\n", ns, gd, w[k])
			shown++
		}
	}
	for _, k := range slices.Sorted(maps.Keys(g)) {
		if _, ok := w[k]; !ok && shown < 10 {
			fmt.Fprintf(b, "%s: extra document %s\n", ns, g[k])
			shown++
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want.Indexes)) {
		switch gi, ok := got.Indexes[name]; {
		case !ok:
			fmt.Fprintf(b, "%s: missing index %s\n", ns, want.Indexes[name])
		case !bytes.Equal(gi, want.Indexes[name]):
			fmt.Fprintf(b, "%s: index differs:\n   got %s\n  want %s\n", ns, gi, want.Indexes[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got.Indexes)) {
		if _, ok := want.Indexes[name]; !ok {
			fmt.Fprintf(b, "%s: extra index %s\n", ns, got.Indexes[name])
		}
	}
}
