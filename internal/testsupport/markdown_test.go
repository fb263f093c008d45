package testsupport

import "testing"

// The anchors are GitHub's.
func TestHeadingAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"MongosyncLagHigh":                           "mongosynclaghigh",
		"Recording rules":                            "recording-rules",
		"oplog_collector":                            "oplog_collector",
		"Oplog collectors (x)":                       "oplog-collectors-x",
		"mongosync_exporter`s ":                      "mongosync_exporters",
		" Recovering from `error_resume_token_lost`": "recovering-from-error_resume_token_lost",
		" Leases (`oplog_collector_leases`)":         "leases-oplog_collector_leases",
		" The exporter's section":                    "the-exporters-section",
		" 1. Before you need it":                     "1-before-you-need-it",
	} {
		if got := headingAnchor(heading); got != want {
			t.Errorf("headingAnchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

// Headings in code blocks are not headings; a repeated one gets -1.
func TestHeadingAnchors(t *testing.T) {
	got := HeadingAnchors("# A\n```\n# not a heading\n```\n## A\n")
	if !got["a"] || !got["a-1"] || got["not-a-heading"] || len(got) != 2 {
		t.Errorf("HeadingAnchors = %v, want a and a-1", got)
	}
}
