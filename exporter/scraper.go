package exporter

import (
	"context"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mongomigrate/observability/internal/config"
)

// Namespace prefixes the exporter's metrics about itself.
const Namespace = "mongosync_exporter"

// Scraper reads one kind of source for a scrape. Scrape must honour ctx (the scrape's
// deadline) and report unreachable targets through its own metrics (such as
// mongosync_up): an error means the scraper itself could not finish, which the exporter
// exports as mongosync_exporter_collector_success 0. Each target is read through
// Env.target, so that nothing a source sends can end the process or send half a
// target's series. A scraper describes no metrics ahead: the exporter is an unchecked
// collector, whose series exist only when their source reports them.
type Scraper interface {
	Scrape(ctx context.Context, ch chan<- prometheus.Metric) error
}

// Env is what a scraper gets besides its config. OnChange and Stats outlive reloads, so
// a reload neither repeats every error nor resets a counter.
type Env struct {
	Logger   log.Logger
	OnChange *OnChangeLogger
	Stats    *scraperStats
}

// unknownValue logs, once per change, a value of an enumeration the exporter does not
// know and exports as "other".
func (env Env) unknownValue(key, what, value string, ids ...any) {
	env.OnChange.Notice(key+"/unknown", "A "+what+" this exporter does not know is exported as \"other\"", value, ids...)
}

// Registration describes a scraper: its name (the `collector` label and the
// --collect.<name> flag), a one-line help, whether it runs by default, and how to build
// it from the config. Building happens at start-up and at every reload.
type Registration struct {
	Name    string
	Help    string
	Default bool
	New     func(cfg *config.Exporter, env Env) (Scraper, error)
}

// Registrations lists every scraper the exporter knows, in a stable order.
func Registrations() []Registration {
	return []Registration{
		mongosyncRegistration,
		verifierRegistration,
		heartbeatRegistration,
	}
}
