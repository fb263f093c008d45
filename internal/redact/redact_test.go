package redact

import "testing"

func TestCredentials(t *testing.T) {
	cases := map[string]string{
		"connect mongodb://admin:s3cr3t@db0:27017,db1:27017/?replicaSet=rs0 failed": "connect mongodb://admin:xxxxx@db0:27017,db1:27017/?replicaSet=rs0 failed",
		"mongodb+srv://u:p%40ss@cluster0.example.net":                               "mongodb+srv://u:xxxxx@cluster0.example.net",
		"Get \"https://bob:hunter2@proxy:8443/api/v1/progress\": EOF":               "Get \"https://bob:xxxxx@proxy:8443/api/v1/progress\": EOF",
		"no credentials in http://127.0.0.1:27182/api/v1/progress":                  "no credentials in http://127.0.0.1:27182/api/v1/progress",
		"user only mongodb://reader@db0":                                            "user only mongodb://reader@db0",
		"two a://x:1@h and b://y:2@i":                                               "two a://x:xxxxx@h and b://y:xxxxx@i",
		"time 12:30 is not a URL, nor is key:value@x":                               "time 12:30 is not a URL, nor is key:value@x",
	}
	for in, want := range cases {
		if got := Credentials(in); got != want {
			t.Errorf("Credentials(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
