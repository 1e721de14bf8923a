package messages

import (
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHealthCheckKindAndDefaults(t *testing.T) {
	cases := []struct {
		check HealthCheck
		want  HealthKind
	}{
		{HealthCheck{Exec: []string{"true"}}, HealthExec},
		{HealthCheck{TCP: "127.0.0.1:80"}, HealthTCP},
		{HealthCheck{HTTP: "http://127.0.0.1/"}, HealthHTTP},
		{HealthCheck{Unix: "/run/x.sock"}, HealthUnix},
		{HealthCheck{}, ""},
		{HealthCheck{TCP: "a:1", Unix: "/x"}, ""},
	}
	for _, c := range cases {
		if got := c.check.Kind(); got != c.want {
			t.Errorf("%+v.Kind() = %q, want %q", c.check, got, c.want)
		}
	}

	d := HealthCheck{HTTP: "http://127.0.0.1/"}.WithDefaults()
	want := HealthCheck{HTTP: "http://127.0.0.1/", HTTPStatus: &HTTPStatusRange{200, 399},
		Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3, StartInterval: 5 * time.Second}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("WithDefaults = %+v, want %+v", d, want)
	}
	set := HealthCheck{TCP: "a:1", Interval: time.Second, Timeout: 2 * time.Second, Retries: 7,
		StartPeriod: time.Minute, StartInterval: 200 * time.Millisecond}
	if got := set.WithDefaults(); !reflect.DeepEqual(got, set) {
		t.Fatalf("WithDefaults changed set fields: %+v", got)
	}
}

func TestHealthCheckValidate(t *testing.T) {
	good := []HealthCheck{
		{Exec: []string{"/bin/sh", "-c", "exit 0"}},
		{TCP: "127.0.0.1:8080"},
		{TCP: "[::1]:8080"},
		{TCP: "localhost:1"},
		{HTTP: "https://127.0.0.1:8443/healthz?x=1"},
		{HTTP: "http://[::1]/", HTTPStatus: &HTTPStatusRange{204, 204}},
		{Unix: "/run/box/ready.sock"},
		{TCP: "a:1", Interval: MinHealthInterval, StartInterval: MinHealthInterval, Timeout: MinHealthTimeout, Retries: 1, StartPeriod: time.Hour},
	}
	for _, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		}
	}
	bad := []struct {
		check HealthCheck
		field string // the field the message must name
	}{
		{HealthCheck{}, "health_check:"},
		{HealthCheck{TCP: "a:1", HTTP: "http://a/"}, "health_check:"},
		{HealthCheck{Exec: []string{""}}, "health_check.exec[0]"},
		{HealthCheck{Exec: []string{"sh", "a\x00b"}}, "health_check.exec[1]"},
		{HealthCheck{Exec: []string{"sh", strings.Repeat("x", MaxHealthExecBytes)}}, "health_check.exec"},
		{HealthCheck{TCP: "127.0.0.1"}, "health_check.tcp"},
		{HealthCheck{TCP: ":80"}, "health_check.tcp"},
		{HealthCheck{TCP: "a:0"}, "health_check.tcp"},
		{HealthCheck{TCP: "a:http"}, "health_check.tcp"},
		{HealthCheck{TCP: "a:65536"}, "health_check.tcp"},
		{HealthCheck{HTTP: "ftp://a/"}, "health_check.http"},
		{HealthCheck{HTTP: "http:///x"}, "health_check.http"},
		{HealthCheck{HTTP: "http://user:pw@a/"}, "health_check.http"},
		{HealthCheck{HTTP: "http://a:99999/"}, "health_check.http"},
		{HealthCheck{HTTP: "%zz"}, "health_check.http"},
		{HealthCheck{Unix: "run/x.sock"}, "health_check.unix"},
		{HealthCheck{Unix: "/" + strings.Repeat("x", 200)}, "health_check.unix"},
		{HealthCheck{TCP: "a:1", HTTPStatus: &HTTPStatusRange{200, 299}}, "health_check.http_status"},
		{HealthCheck{HTTP: "http://a/", HTTPStatus: &HTTPStatusRange{300, 200}}, "health_check.http_status"},
		{HealthCheck{HTTP: "http://a/", HTTPStatus: &HTTPStatusRange{99, 200}}, "health_check.http_status"},
		{HealthCheck{TCP: "a:1", Interval: -time.Second}, "health_check.interval"},
		{HealthCheck{TCP: "a:1", Interval: time.Millisecond}, "health_check.interval"},
		{HealthCheck{TCP: "a:1", StartInterval: time.Millisecond}, "health_check.start_interval"},
		{HealthCheck{TCP: "a:1", Timeout: time.Millisecond}, "health_check.timeout"},
		{HealthCheck{TCP: "a:1", StartPeriod: -1}, "health_check.start_period"},
		{HealthCheck{TCP: "a:1", Retries: -1}, "health_check.retries"},
	}
	for _, c := range bad {
		err := c.check.Validate()
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Validate(%+v) = %v, want ErrBadSpec naming %s", c.check, err, c.field)
		}
	}
}

func TestHealthCheckValidateForRefusesSecretsInTheCheck(t *testing.T) {
	spec := sampleSpec() // secret TOKEN = s3cret-value, and a CA key
	for _, c := range []struct {
		check HealthCheck
		field string
	}{
		{HealthCheck{Exec: []string{"curl", "-H", "Authorization: s3cret-value"}}, "health_check.exec[2]"},
		{HealthCheck{HTTP: "http://127.0.0.1/?token=s3cret-value"}, "health_check.http"},
		{HealthCheck{Unix: "/run/s3cret-value.sock"}, "health_check.unix"},
	} {
		err := c.check.ValidateFor(&spec)
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), "TOKEN") {
			t.Errorf("ValidateFor(%+v) = %v, want ErrBadSpec naming %s and TOKEN", c.check, err, c.field)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret-value") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
	ok := HealthCheck{Exec: []string{"/bin/sh", "-c", `test -n "$TOKEN"`}}
	if err := ok.ValidateFor(&spec); err != nil {
		t.Fatalf("a check naming the secret's variable: %v", err)
	}
	if err := (&HealthCheck{}).ValidateFor(&spec); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("ValidateFor of an empty check = %v, want Validate's ErrBadSpec", err)
	}
}

func TestReadyConditionValidate(t *testing.T) {
	check := &HealthCheck{TCP: "a:1"}
	for _, c := range []struct {
		cond  ReadyCondition
		check *HealthCheck
		ok    bool
	}{
		{"", nil, true},
		{ReadyWhenReady, nil, true},
		{ReadyWhenHealthy, check, true},
		{ReadyWhenHealthy, nil, false},
		{"live", check, false},
	} {
		err := c.cond.Validate(c.check)
		if (err == nil) != c.ok || (err != nil && (!errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "ready_when"))) {
			t.Errorf("ReadyCondition(%q).Validate(check %v) = %v", c.cond, c.check != nil, err)
		}
	}
}

func TestHealthStateValid(t *testing.T) {
	for _, s := range []HealthState{HealthStarting, HealthHealthy, HealthUnhealthy} {
		if !s.Valid() {
			t.Errorf("%q is not Valid", s)
		}
	}
	if HealthState("").Valid() || HealthState("sick").Valid() {
		t.Error("an unknown health state is Valid")
	}
}

func TestHealthTypesRoundTripThroughJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 5, 0, 0, 123456789, time.UTC)
	res := HealthResult{Outcome: HealthFail, Start: at, End: at.Add(time.Second), ExitCode: 1, Reason: "exit status 1", Output: "no"}
	hdr := EventHeader{Home: "/h", BoxID: "web", At: at, Generation: 2}
	for _, in := range []any{
		&HealthCheck{Exec: []string{"sh", "-c", "true"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 4,
			StartPeriod: time.Minute, StartInterval: 500 * time.Millisecond},
		&HealthCheck{HTTP: "http://a/", HTTPStatus: &HTTPStatusRange{200, 204}},
		&BoxHealth{State: HealthUnhealthy, FailingStreak: 3, Log: []HealthResult{res, res}},
		&BoxHealthy{EventHeader: hdr, First: true},
		&BoxUnhealthy{EventHeader: hdr, FailingStreak: 3, Last: res},
	} {
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		out := reflect.New(reflect.TypeOf(in).Elem()).Interface()
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%T: %s decoded to %+v", in, raw, out)
		}
	}
	var e Event = BoxHealthy{EventHeader: hdr}
	if e.Kind() != "BoxHealthy" || (BoxUnhealthy{}).Kind() != "BoxUnhealthy" || e.Box() != "web" {
		t.Fatalf("event kinds: %q %q", e.Kind(), (BoxUnhealthy{}).Kind())
	}
}

// TestSplitHostPortAgreesWithNet: the package's own host:port splitter
// (it avoids linking package net into the shim) accepts and splits exactly
// what net.SplitHostPort does for the addresses a tcp check may name.
func TestSplitHostPortAgreesWithNet(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{
		"127.0.0.1:80", "localhost:8080", "[::1]:443", "[fe80::1%eth0]:22", "host:", ":80", "[]:80",
		"host", "", "::1:80", "[::1]80", "[::1", "::1]:80", "a[b]:80", "host:8[0]", "[[::1]]:80", "[::1]:8:0",
	} {
		wantHost, wantPort, err := net.SplitHostPort(addr)
		host, port, ok := splitHostPort(addr)
		if ok != (err == nil) || host != wantHost || port != wantPort {
			t.Errorf("splitHostPort(%q) = %q, %q, %v; net.SplitHostPort gives %q, %q, %v", addr, host, port, ok, wantHost, wantPort, err)
		}
	}
}
