package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/user"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	promconfig "github.com/prometheus/common/config"

	"github.com/mongomigrate/observability/collector"
	"github.com/mongomigrate/observability/internal/config"
)

// cliFlags are the flags of the commands that act on sources: status, reset,
// deregister, resume.
type cliFlags struct {
	source         string
	url            string
	httpConfigFile string
	offline        bool
	yes            bool
	format         string
	from           string
}

func addCommands(app *kingpin.Application, f *cliFlags) {
	client := func(cmd *kingpin.CmdClause) {
		cmd.Flag("collector.url", "URL of the running oplog_collector's HTTP API (no credentials: see --http.config.file).").
			Default("http://127.0.0.1:9783").StringVar(&f.url)
		cmd.Flag("http.config.file", "HTTP client configuration file (basic_auth, authorization, tls_config, as in Prometheus' http_config) for a collector behind --web.config.file.").
			StringVar(&f.httpConfigFile)
	}
	destructive := func(cmd *kingpin.CmdClause) {
		cmd.Flag("source", "Name of the source.").Required().StringVar(&f.source)
		client(cmd)
		cmd.Flag("offline", "Act on the store directly, with no collector running (refused while a collector holds the source's lease). Reads the store from --config.file.").
			BoolVar(&f.offline)
		cmd.Flag("yes", "Do not ask for confirmation.").BoolVar(&f.yes)
	}
	destructive(app.Command("reset", "Wipe a source's stored events and resume token and capture it again from now (the way out of error_resume_token_lost). Asks the running collector, which needs --web.enable-admin-api; the other sources are not touched."))
	destructive(app.Command("deregister", "Stop capturing a source for good: wipe its stored events, resume token and gap record, and delete its metadata document."))
	resume := app.Command("resume", "Capture a source again from a time its oplog still holds, keeping its stored history (the way out of error_resume_token_lost that loses only what the source no longer holds); the stretch skipped is recorded as a gap. Asks the running collector, which needs --web.enable-admin-api.")
	destructive(resume)
	resume.Flag("from", "Where to start: earliest (the oldest event the source's oplog still holds), an RFC 3339 time in whole seconds (from the start of that second) or a timestamp seconds,increment. Refused when the source no longer holds it.").
		Required().StringVar(&f.from)
	status := app.Command("status", "Show each source's state, lag, window and last error, from the running collector.")
	client(status)
	status.Flag("format", "text or json.").Default("text").EnumVar(&f.format, "text", "json")
}

func runCommand(command, configFile string, f *cliFlags, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	switch {
	case command == "status":
		err = showStatus(ctx, f, stdout)
	case command == "resume":
		err = resumeCommand(ctx, configFile, f, stdin, stdout)
	case f.offline:
		err = wipeOffline(ctx, command, configFile, f, stdin, stdout)
	default:
		err = wipeOnline(ctx, command, f, stdin, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", command, err)
		return 1
	}
	return 0
}

// newClient calls the collector at --collector.url with the HTTP client config.
func newClient(f *cliFlags) (*collector.Client, error) {
	httpConfig := &promconfig.DefaultHTTPClientConfig
	if f.httpConfigFile != "" {
		var err error
		if httpConfig, _, err = promconfig.LoadHTTPConfigFile(f.httpConfigFile); err != nil {
			return nil, fmt.Errorf("--http.config.file: %w", err)
		}
	}
	httpClient, err := promconfig.NewClientFromConfig(*httpConfig, program)
	if err != nil {
		return nil, fmt.Errorf("--http.config.file: %w", err)
	}
	return collector.NewClient(f.url, httpClient)
}

// explain turns a failed call of command into what to do about it.
func explain(command string, c *collector.Client, err error) error {
	var apiErr *collector.APIError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) && command == "status":
		return fmt.Errorf("no collector answers at %s (connection refused); start it (oplog_collector run), or see what the store holds with oplog_collector range --source <name>", c.URL())
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no collector answers at %s (connection refused); if none runs, act on the store directly with --offline", c.URL())
	case errors.As(err, &apiErr) && apiErr.Code == http.StatusUnauthorized:
		return fmt.Errorf("the collector at %s asks for credentials: give them in --http.config.file (basic_auth)", c.URL())
	}
	return err
}

func wipeOnline(ctx context.Context, command string, f *cliFlags, stdin io.Reader, stdout io.Writer) error {
	c, err := newClient(f)
	if err != nil {
		return err
	}
	st, err := c.Source(ctx, f.source)
	if err != nil {
		return explain(command, c, err)
	}
	var stored int64 = -1
	if st.StoredEvents != nil {
		stored = *st.StoredEvents
	}
	if err := confirm(f, wipeWarning(command, f.source, stored, "the collector at "+c.URL()+" ("+st.State+")"), stdin, stdout); err != nil {
		return err
	}
	do := c.Reset
	if command == "deregister" {
		do = c.Deregister
	}
	wiped, err := do(ctx, f.source)
	if err != nil {
		return explain(command, c, err)
	}
	report(stdout, wiped, "by the collector at "+c.URL())
	return nil
}

func wipeOffline(ctx context.Context, command, configFile string, f *cliFlags, stdin io.Reader, stdout io.Writer) error {
	cfg, err := config.ForCollector.Load(configFile)
	if err != nil {
		return fmt.Errorf("--offline needs the store from the config file:\n%w", err)
	}
	store, err := collector.OpenOffline(&cfg.Collector)
	if err != nil {
		return err
	}
	defer store.Close()
	sum, err := store.Inspect(ctx, f.source)
	if err != nil {
		return err
	}
	where := "the store, directly"
	if !sum.Oldest.IsZero() {
		where += fmt.Sprintf("; events from %s to %s", sum.Oldest.Format(time.RFC3339), sum.Newest.Format(time.RFC3339))
	}
	if err := confirm(f, wipeWarning(command, f.source, sum.StoredEvents, where), stdin, stdout); err != nil {
		return err
	}
	do := store.Reset
	if command == "deregister" {
		do = store.Deregister
	}
	wiped, err := do(ctx, f.source, collector.Requester{User: osUser(), Via: "offline"})
	if err != nil {
		return err
	}
	report(stdout, wiped, "in the store directly")
	return nil
}

// wipeWarning says what a reset or a de-registration deletes. stored is -1 when
// unknown.
func wipeWarning(command, source string, stored int64, where string) string {
	count := "every stored event"
	if stored >= 0 {
		count = fmt.Sprintf("about %d stored events", stored)
	}
	after := "it is then captured again from now"
	if command == "deregister" {
		after = "its metadata document is deleted too, and no collector captures it until it is reset"
	}
	return fmt.Sprintf("%s %s: deletes %s of %s, the only copy of its captured history (%s); %s.", command, source, count, source, where, after)
}

// confirm says what the command does and asks for the source's name again, unless
// --yes was given.
func confirm(f *cliFlags, warning string, stdin io.Reader, stdout io.Writer) error {
	fmt.Fprintln(stdout, warning)
	if f.yes {
		return nil
	}
	fmt.Fprintf(stdout, "Type the source's name to confirm: ")
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	if strings.TrimSpace(line) != f.source {
		return errors.New("not confirmed; nothing was changed (give --yes to confirm without a prompt)")
	}
	return nil
}

// resumeCommand asks the running collector (or, --offline, acts on the store) to
// capture the source again from --from.
func resumeCommand(ctx context.Context, configFile string, f *cliFlags, stdin io.Reader, stdout io.Writer) error {
	warning := func(where string) string {
		return fmt.Sprintf("resume %s: captures it again from %s (%s), keeping its stored history; the events between its saved position and there are not captured, and are recorded as a gap.", f.source, f.from, where)
	}
	if f.offline {
		cfg, err := config.ForCollector.Load(configFile)
		if err != nil {
			return fmt.Errorf("--offline needs the store and the source from the config file:\n%w", err)
		}
		store, err := collector.OpenOffline(&cfg.Collector)
		if err != nil {
			return err
		}
		defer store.Close()
		if _, err := store.Inspect(ctx, f.source); err != nil {
			return err
		}
		if err := confirm(f, warning("the store, directly; the next collector to start captures from there"), stdin, stdout); err != nil {
			return err
		}
		resumed, err := store.Resume(ctx, f.source, f.from, collector.Requester{User: osUser(), Via: "offline"})
		if err != nil {
			return err
		}
		reportResume(stdout, resumed, "in the store directly")
		return nil
	}
	c, err := newClient(f)
	if err != nil {
		return err
	}
	st, err := c.Source(ctx, f.source)
	if err != nil {
		return explain("resume", c, err)
	}
	if err := confirm(f, warning("the collector at "+c.URL()+", "+st.State), stdin, stdout); err != nil {
		return err
	}
	resumed, err := c.Resume(ctx, f.source, f.from)
	if err != nil {
		return explain("resume", c, err)
	}
	reportResume(stdout, resumed, "by the collector at "+c.URL())
	return nil
}

func reportResume(stdout io.Writer, r collector.Resumed, where string) {
	fmt.Fprintf(stdout, "resume %s: done %s; capture starts again at %s; %d stored events kept.\n", r.Source, where, r.StartAt, r.EventsKept)
	if r.SkippedAfter != "" {
		fmt.Fprintf(stdout, "Not captured: the events after %s and before %s (%ds), recorded as a gap: oplog_collector range --source %s shows it.\n",
			r.SkippedAfter, r.StartAt, r.SkippedSeconds, r.Source)
	}
}

func report(stdout io.Writer, w collector.Wiped, where string) {
	fmt.Fprintf(stdout, "%s %s: done %s; %d events deleted.\n", w.Action, w.Source, where, w.EventsDeleted)
	if w.Action == "deregister" {
		fmt.Fprintf(stdout, "Remove %s from the config file of every collector that lists it.\n", w.Source)
	}
}

// osUser names who ran an offline command, for the log and the gap record.
func osUser() string {
	if u, err := user.Current(); err == nil {
		return "os:" + u.Username
	}
	return "os:unknown"
}

func showStatus(ctx context.Context, f *cliFlags, stdout io.Writer) error {
	c, err := newClient(f)
	if err != nil {
		return err
	}
	sources, err := c.Sources(ctx)
	if err != nil {
		return fmt.Errorf("%w; the exporter's oplog_collector_* metrics show the last heartbeats", explain("status", c, err))
	}
	now := time.Now()
	if f.format == "json" {
		return writeStatusJSON(stdout, sources, now)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SOURCE\tSTATE\tLAG\tWINDOW\tBUFFERED\tNOTE")
	for _, s := range sources {
		note := s.Error
		if s.Holder != "" {
			note = "held by " + s.Holder
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.State, since(now, s.Checkpoint), duration(s.Window()), s.BufferedEvents, note)
	}
	return w.Flush()
}

// sourceJSON is one source in status --format json: what the collector's API gives, and
// the lag and window the text shows, in seconds (absent when unknown).
type sourceJSON struct {
	collector.Status
	LagSeconds    *float64 `json:"lag_seconds,omitempty"`
	WindowSeconds *float64 `json:"window_seconds,omitempty"`
}

func writeStatusJSON(stdout io.Writer, sources []collector.Status, now time.Time) error {
	out := make([]sourceJSON, 0, len(sources))
	for _, s := range sources {
		j := sourceJSON{Status: s}
		if !s.Checkpoint.IsZero() {
			lag := now.Sub(s.Checkpoint).Seconds()
			j.LagSeconds = &lag
		}
		if w := s.Window(); w > 0 {
			window := w.Seconds()
			j.WindowSeconds = &window
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration(now.Sub(t))
}

func duration(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}
