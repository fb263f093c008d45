package config

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// topologyOptions are the options of a connection string that say how to reach the
// cluster it names (a mongos, one server, a load balancer, SRV records): they do not
// carry over to another replica set of the same cluster.
var topologyOptions = []string{"replicaset", "directconnection", "loadbalanced", "srvmaxhosts", "srvservicename"}

// ReplicaSetURI is the connection string of the replica set set (empty: one server),
// with members hosts,
// made from uri, the connection string of a cluster it belongs to (a shard of a
// sharded cluster reached through mongos): uri's user, password, authentication and
// TLS options and every other option carry over; its hosts and the options that name
// how to reach it do not. Options a mongodb+srv:// uri takes from DNS (TLS on unless
// turned off, and the authSource of its TXT record) are written out, since the new
// string lists hosts. Errors never quote either string.
func ReplicaSetURI(uri, set string, hosts []string) (string, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return "", errors.New(scrubURIError(uri, err.Error()))
	}
	rest := uri[strings.Index(uri, "://")+3:]
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userInfo := ""
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userInfo = authority[:at+1]
	}
	path, query, _ := strings.Cut(tail, "?")
	if path == "" {
		path = "/"
	}
	var kept []string
	given := map[string]bool{}
	for _, pair := range strings.Split(query, "&") {
		key, _, _ := strings.Cut(pair, "=")
		lower := strings.ToLower(key)
		if pair == "" || slices.Contains(topologyOptions, lower) {
			continue
		}
		given[lower] = true
		kept = append(kept, pair)
	}
	if cs.Scheme == connstring.SchemeMongoDBSRV {
		if !given["tls"] && !given["ssl"] {
			kept = append(kept, "tls="+strconv.FormatBool(cs.SSL))
		}
		if cs.AuthSourceSet && !given["authsource"] {
			kept = append(kept, "authSource="+url.QueryEscape(cs.AuthSource))
		}
	}
	if set != "" {
		kept = append(kept, "replicaSet="+url.QueryEscape(set))
	} else if len(hosts) == 1 {
		kept = append(kept, "directConnection=true") // a shard that is one server
	}
	return "mongodb://" + userInfo + strings.Join(hosts, ",") + path + "?" + strings.Join(kept, "&"), nil
}
