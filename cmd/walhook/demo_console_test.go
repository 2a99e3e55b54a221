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
	// Successful first attempts reach the log in batches, a moment after
	// the story's tally saw them: read until all 14 are there (another
	// process, so there is no signal to wait on).
	var page deliveriesPage
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		page = readDeliveries(t, c, "http://"+addr+"/v1/deliveries?limit=100")
		if len(page.Data) >= 14 || time.Now().After(wait) {
			break
		}
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

// deliveriesPage is the part of GET /v1/deliveries the demo test reads.
type deliveriesPage struct {
	Data []struct {
		EventType  string `json:"event_type"`
		EndpointID string `json:"endpoint_id"`
		Status     string `json:"status"`
		Attempts   []struct {
			StatusCode int `json:"status_code"`
		} `json:"attempts"`
	} `json:"data"`
}

func readDeliveries(t *testing.T, c *http.Client, u string) deliveriesPage {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page deliveriesPage
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with the session: %d %v", u, res.StatusCode, err)
	}
	return page
}
