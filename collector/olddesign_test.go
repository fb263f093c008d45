package collector

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// oldDesign is the old collector's loop: read up to 100 events or for 1 s, insert them
// in one call, save the last token, then read again: reading and writing take turns. It
// runs until n inserts are stored (n <= 0: until ctx ends), counting its writes in batches.
func oldDesign(ctx context.Context, b testing.TB, client, storeClient *mongo.Client, db string, start bson.Raw, n int, batches *atomic.Int64) {
	cs, err := client.Database(db).Watch(ctx, mongo.Pipeline{}, options.ChangeStream().SetResumeAfter(start).SetMaxAwaitTime(100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close(context.Background())
	store := storeClient.Database("old_" + db)
	events, tokens := store.Collection("oplogs_"+db), store.Collection("resume_tokens_for_"+db)
	var split splitState
	for seen := 0; ctx.Err() == nil && (n <= 0 || seen < n); {
		batch := make([]any, 0, 100)
		var last bson.Raw
		for since := time.Now(); len(batch) < 100 && time.Since(since) < time.Second && (n <= 0 || seen < n); {
			if !cs.TryNext(ctx) {
				if cs.Err() != nil || ctx.Err() != nil {
					break
				}
				continue
			}
			it, err := toItem(db, cs.Current, time.Now(), &split)
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, it.doc)
			last = it.pos.Token
			if it.opType == "insert" {
				seen++
			}
		}
		if len(batch) == 0 {
			continue
		}
		if _, err := events.InsertMany(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		if _, err := tokens.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "resume_token_" + db}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "token", Value: last}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
			b.Fatal(err)
		}
		batches.Add(1)
	}
}
