package collector

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// clusterIdentity tells one source cluster from another, so that a store's history is
// never continued from a different cluster that was given the same source name. The
// strong identities need the clusterMonitor role (replSetGetConfig) or read access to
// the config database; without them the replica set name alone is compared.
type clusterIdentity struct {
	// SetName is the replica set's name (hello's setName); empty through mongos.
	SetName string `bson:"set_name,omitempty"`
	// ReplicaSetID is the set's settings.replicaSetId, made when the set was initiated.
	ReplicaSetID bson.ObjectID `bson:"replica_set_id,omitempty"`
	// Sharded is a cluster reached through mongos; ClusterID its config.version clusterId.
	Sharded   bool          `bson:"sharded,omitempty"`
	ClusterID bson.ObjectID `bson:"cluster_id,omitempty"`
}

func (c clusterIdentity) String() string {
	var parts []string
	switch {
	case c.Sharded:
		parts = append(parts, "sharded cluster")
		if !c.ClusterID.IsZero() {
			parts = append(parts, "clusterId "+c.ClusterID.Hex())
		}
	default:
		parts = append(parts, fmt.Sprintf("replica set %q", c.SetName))
		if !c.ReplicaSetID.IsZero() {
			parts = append(parts, "replicaSetId "+c.ReplicaSetID.Hex())
		}
	}
	return strings.Join(parts, ", ")
}

// sameCluster compares what both identities know. ok is false when they differ.
func (c clusterIdentity) sameCluster(other clusterIdentity) bool {
	if c.Sharded != other.Sharded {
		return false
	}
	if !c.ReplicaSetID.IsZero() && !other.ReplicaSetID.IsZero() {
		return c.ReplicaSetID == other.ReplicaSetID
	}
	if !c.ClusterID.IsZero() && !other.ClusterID.IsZero() {
		return c.ClusterID == other.ClusterID
	}
	return c.SetName == other.SetName
}

// refused is a server answering a command with an error: no role for it (13), a
// command it does not know (59), or one a hosted service does not allow (Atlas: 8000).
// The identity is then the weaker one; only an error reaching the server is retried.
func refused(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce)
}

// identify reads the source cluster's identity.
func identify(ctx context.Context, client *mongo.Client) (clusterIdentity, error) {
	admin := client.Database("admin")
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return clusterIdentity{}, fmt.Errorf("identifying the source cluster (hello): %w", err)
	}
	id := clusterIdentity{SetName: hello.SetName, Sharded: hello.Msg == "isdbgrid"}
	if id.Sharded {
		var version struct {
			ClusterID bson.ObjectID `bson:"clusterId"`
		}
		err := client.Database("config").Collection("version").FindOne(ctx, bson.D{}).Decode(&version)
		switch {
		case err == nil:
			id.ClusterID = version.ClusterID
		case !refused(err) && !errors.Is(err, mongo.ErrNoDocuments):
			return clusterIdentity{}, fmt.Errorf("identifying the source cluster (config.version): %w", err)
		}
		return id, nil
	}
	var config struct {
		Config struct {
			Settings struct {
				ReplicaSetID bson.ObjectID `bson:"replicaSetId"`
			} `bson:"settings"`
		} `bson:"config"`
	}
	err := admin.RunCommand(ctx, bson.D{{Key: "replSetGetConfig", Value: 1}}).Decode(&config)
	switch {
	case err == nil:
		id.ReplicaSetID = config.Config.Settings.ReplicaSetID
	case !refused(err):
		return clusterIdentity{}, fmt.Errorf("identifying the source cluster (replSetGetConfig): %w", err)
	}
	return id, nil
}
