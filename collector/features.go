package collector

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// serverFeatures are the change-stream options the source's server supports.
type serverFeatures struct {
	known              bool
	showExpandedEvents bool // MongoDB 6.0: DDL events such as create, createIndexes, shardCollection
	splitLargeEvents   bool // MongoDB 7.0 and 6.0.9: $changeStreamSplitLargeEvent, events over 16 MB
}

// detectFeatures reads the server's version with buildInfo.
func detectFeatures(ctx context.Context, client *mongo.Client) (serverFeatures, error) {
	var info struct {
		VersionArray []int32 `bson:"versionArray"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return serverFeatures{}, fmt.Errorf("reading the source's version (buildInfo): %w", err)
	}
	return featuresOf(info.VersionArray), nil
}

// featuresOf maps a server version (buildInfo's versionArray) to what it supports.
func featuresOf(version []int32) serverFeatures {
	v := append(version, 0, 0, 0)
	major, minor, patch := v[0], v[1], v[2]
	return serverFeatures{
		known:              true,
		showExpandedEvents: major >= 6,
		splitLargeEvents:   major >= 7 || (major == 6 && minor == 0 && patch >= 9),
	}
}
