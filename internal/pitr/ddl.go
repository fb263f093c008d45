package pitr

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/mongomigrate/observability/internal/mongoerr"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// shardingEvents change how a collection is distributed, not its data: the target's
// topology is its own, so they are counted and left out.
var shardingEvents = map[string]bool{"shardCollection": true, "reshardCollection": true, "refineCollectionShardKey": true}

// ddl applies a collection or database event, after the writes before it.
func (a *applier) ddl(ctx context.Context, e *oplogstore.Event) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	var err error
	switch e.OpType {
	case "create":
		_, err = a.reg.locate(ctx, e, createWith(e.OperationDescription))
	case "drop":
		err = a.drop(ctx, e)
	case "rename":
		err = a.rename(ctx, e)
	case "dropDatabase":
		err = a.dropDatabase(ctx, e)
	case "createIndexes":
		err = a.createIndexes(ctx, e)
	case "dropIndexes":
		err = a.dropIndexes(ctx, e)
	case "modify":
		err = a.modify(ctx, e)
	default:
		return fmt.Errorf("event at %s: unknown operation type %q", oplogstore.FormatTS(e.TS), e.OpType)
	}
	if err != nil {
		return fmt.Errorf("%s event at %s on %s: %w", e.OpType, oplogstore.FormatTS(e.TS), e.Namespace(), err)
	}
	return nil
}

// createWith creates a collection with the options a create event recorded (a capped
// size, a validator, a view's pipeline, a clustered index...). The _id index the server
// makes anyway is left out: it is the same unless it has a collation.
func createWith(description bson.Raw) creator {
	return func(ctx context.Context, db *mongo.Database, name string) error {
		cmd := bson.D{{Key: "create", Value: name}}
		elements, _ := description.Elements()
		for _, el := range elements {
			if el.Key() == "idIndex" && isDefaultIDIndex(el.Value()) {
				continue
			}
			cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
		}
		return db.RunCommand(ctx, cmd).Err()
	}
}

func isDefaultIDIndex(v bson.RawValue) bool {
	spec, ok := v.DocumentOK()
	if !ok {
		return false
	}
	key, _ := spec.Lookup("key").DocumentOK()
	fields, _ := key.Elements()
	_, hasCollation := spec.Lookup("collation").DocumentOK()
	return len(fields) == 1 && fields[0].Key() == "_id" && !hasCollation
}

func (a *applier) drop(ctx context.Context, e *oplogstore.Event) error {
	c, err := a.reg.locate(ctx, e, nil)
	if err != nil || c == nil {
		return err
	}
	return a.dropCollection(ctx, c)
}

func (a *applier) dropCollection(ctx context.Context, c *collection) error {
	if err := a.client.Database(c.db).Collection(c.name).Drop(ctx); err != nil && !mongoerr.HasCode(err, mongoerr.NamespaceNotFound) {
		return err
	}
	a.reg.forget(c)
	a.forgetIndexes(c, "")
	return a.park.dropped(ctx, c)
}

// rename moves the collection to its new name. A collection of the source that the
// target holds under another name already (a replay that starts before a later rename)
// moves from there. When the new name holds another of the source's collections, the
// target is ahead: that collection leaves the name later in the source's history, and
// this one's events find it where it is, so it stays.
func (a *applier) rename(ctx context.Context, e *oplogstore.Event) error {
	to := renameTarget(e)
	if to == "" {
		return fmt.Errorf("the event has no target namespace {db, coll}")
	}
	toDB, toColl, _ := strings.Cut(to, ".")
	c, err := a.reg.locate(ctx, e, nil)
	if err != nil {
		return err
	}
	if c == nil {
		return a.gone(e)
	}
	if c.db == toDB && c.name == toColl {
		return nil
	}
	occupant := a.reg.byNS[to]
	if occupant != nil {
		_, dropped, _ := e.OperationDescription.Lookup("dropTarget").BinaryOK()
		if a.reg.tracked[string(occupant.uuid)] && !occupant.view && a.reg.mapping[string(dropped)] != string(occupant.uuid) {
			return nil
		}
	}
	err = a.client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: c.ns()},
		{Key: "to", Value: to},
		{Key: "dropTarget", Value: occupant != nil},
	}).Err()
	if err != nil {
		return err
	}
	if occupant != nil {
		a.reg.forget(occupant)
		a.forgetIndexes(occupant, "")
		if err := a.park.dropped(ctx, occupant); err != nil {
			return err
		}
	}
	_, err = a.reg.renamed(ctx, c, toDB, toColl)
	return err
}

// dropDatabase: the server emits a drop event for each collection before the database's,
// so the collections the registry maps are dropped already, or, still there, were made
// after this event. What else is in the database (views; collections known only by
// name) goes, if --namespace selects it.
//
// The database's system.views goes too when no view is left in it, as the source's
// dropDatabase took it (a server keeps it, empty, after the last view is dropped);
// unless the range makes a view in the database later. The source has system.views
// again from then on, and the target, ahead of this event on a second pass, may skip
// that view's events (its name holds a collection the range makes after it), so
// nothing would bring system.views back.
func (a *applier) dropDatabase(ctx context.Context, e *oplogstore.Event) error {
	keptView := false
	for _, c := range a.reg.inDatabase(e.DB) {
		if (c.uuid != nil && a.reg.tracked[string(c.uuid)]) || !a.selected.has(c.db, c.name) {
			keptView = keptView || c.view
			continue
		}
		if err := a.dropCollection(ctx, c); err != nil {
			return err
		}
	}
	if keptView || !a.selected.whole(e.DB) || a.hist.viewMadeAfter(e.DB, e.TS) {
		return nil
	}
	err := a.client.Database(e.DB).Collection("system.views").Drop(ctx)
	if mongoerr.HasCode(err, mongoerr.NamespaceNotFound) {
		return nil
	}
	return err
}

// modify applies a collMod: the event's operationDescription holds the options it set.
func (a *applier) modify(ctx context.Context, e *oplogstore.Event) error {
	c, err := a.reg.locate(ctx, e, nil)
	if err != nil {
		return err
	}
	if c == nil {
		return a.gone(e)
	}
	c.independent = nil // an index may become unique
	index, modifiesIndex := e.OperationDescription.Lookup("index").DocumentOK()
	deferred := modifiesIndex && a.modifyDeferred(c, index)
	cmd := bson.D{{Key: "collMod", Value: c.name}}
	elements, _ := e.OperationDescription.Elements()
	for _, el := range elements {
		cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
	}
	err = a.client.Database(c.db).RunCommand(ctx, cmd).Err()
	if !mongoerr.HasCode(err, mongoerr.IndexNotFound) || !modifiesIndex {
		return err
	}
	// The target has no such index: its build is deferred (the options went to it), or
	// the range drops it later and the target is ahead. Else it lacks one the source had.
	ref := indexRefOf(index)
	if deferred || (e.CollectionUUID != nil && a.hist.indexDroppedAfter(uuidID(e.CollectionUUID), ref, e.TS)) || e.CollectionUUID == nil {
		return nil
	}
	return fmt.Errorf("the target has no index %s, which the source had then and kept: the target is not the source's state at a time between --from and --to (%w)", ref, err)
}
