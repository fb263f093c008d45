package config

import (
	"strings"
	"testing"
)

// A shard is reached with the connection string of the cluster it belongs to, but for
// its hosts and the options that name how to reach that cluster.
func TestReplicaSetURI(t *testing.T) {
	for _, c := range []struct {
		name, uri, set string
		hosts          []string
		want           string
	}{
		{"no credentials, no options", "mongodb://mongos:27017", "sh0", []string{"a:27018", "b:27018"},
			"mongodb://a:27018,b:27018/?replicaSet=sh0"},
		{"credentials, auth database and options carry over", "mongodb://mon%40itor:p%2Fss@mongos-1:27017,mongos-2:27017/admin?tls=true&readPreference=secondaryPreferred&appName=x", "sh1", []string{"c:27018"},
			"mongodb://mon%40itor:p%2Fss@c:27018/admin?tls=true&readPreference=secondaryPreferred&appName=x&replicaSet=sh1"},
		{"options naming how to reach the mongos are dropped, whatever their case", "mongodb://u:p@mongos/?LoadBalanced=false&directConnection=false&authSource=admin", "sh2", []string{"d:1"},
			"mongodb://u:p@d:1/?authSource=admin&replicaSet=sh2"},
		{"a shard of one server", "mongodb://mongos/?w=majority", "", []string{"e:27018"},
			"mongodb://e:27018/?w=majority&directConnection=true"},
	} {
		got, err := ReplicaSetURI(c.uri, c.set, c.hosts)
		if err != nil || got != c.want {
			t.Errorf("%s: ReplicaSetURI = %q, %v; want %q", c.name, got, err, c.want)
			continue
		}
		if err := ValidateMongoURI(got); err != nil {
			t.Errorf("%s: %q does not validate: %v", c.name, got, err)
		}
	}
	_, err := ReplicaSetURI("mongodb://user:s3cret@host/?authMechanism=BOGUS", "sh0", []string{"a:1"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a connection string the driver refuses: err = %v, want an error without the password", err)
	}
}
