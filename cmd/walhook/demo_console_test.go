package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/testenv"
)

// TestDemoAdminConsole runs `walhook demo --admin`: it prints the console
// URL and a login link, the link's token opens a console session, and the
// story's deliveries (the crm endpoint's retries included) are there.
func TestDemoAdminConsole(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := startDemo(t, "--keep", "--admin", "--admin-listen", addr)
	deadline := time.After(60 * time.Second)
	var dir string
	if os.Getenv(testenv.EnvURL) == "" {
		dir = d.waitLine(t, clusterLine, deadline)[1]
	}
	d.waitLine(t, regexp.MustCompile(`^\s+console\s+http://`+regexp.QuoteMeta(addr)+`/ui/`), deadline)
	link := d.waitLine(t, regexp.MustCompile(`login link: (http://\S+)$`), deadline)[1]
	d.waitLine(t, regexp.MustCompile(`^Story done`), deadline)

	u, err := url.Parse(link)
	if err != nil || u.Path != "/ui/" || !strings.HasPrefix(u.Fragment, "token=") {
		t.Fatalf("login link %q: want http://%s/ui/#token=…", link, addr)
	}
	token := strings.TrimPrefix(u.Fragment, "token=")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Post("http://"+addr+"/ui/api/login", "application/json", strings.NewReader(`{"token": "`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logging in with the link's token: %d", res.StatusCode)
	}
	res, err = c.Get("http://" + addr + "/v1/deliveries?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Data []struct {
			EventType  string `json:"event_type"`
			EndpointID string `json:"endpoint_id"`
			Status     string `json:"status"`
			Attempts   []struct {
				StatusCode int `json:"status_code"`
			} `json:"attempts"`
		} `json:"data"`
	}
	err = json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/deliveries with the session: %d %v", res.StatusCode, err)
	}
	if len(page.Data) != 14 {
		t.Errorf("the console lists %d deliveries, want the story's 14", len(page.Data))
	}
	retried := false
	for _, dl := range page.Data {
		if dl.Status != "delivered" {
			t.Errorf("%s to %s is %s", dl.EventType, dl.EndpointID, dl.Status)
		}
		if dl.EndpointID == "cfg:crm" && dl.EventType == "deal.stage.changed" && len(dl.Attempts) == 3 {
			retried = true
		}
	}
	if !retried {
		t.Errorf("the crm endpoint's delivery with 3 attempts is not in the console: %+v", page.Data)
	}
	d.interrupt(t)
	checkNoCluster(t, dir)
}
