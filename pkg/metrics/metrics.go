package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/sources"
	"github.com/credlink/credlink/pkg/verify"
)

const ns = "credlink"

var (
	descState = prometheus.NewDesc(ns+"_credential_state",
		"Verification status of a credential: 1 for the current status, 0 for the others.", []string{"name", "status"}, nil)
	descBytes = prometheus.NewDesc(ns+"_credential_bytes",
		"Length in bytes of the credential as received (0 when missing).", []string{"name"}, nil)
	descInfo = prometheus.NewDesc(ns+"_credential_info",
		"Static facts about a credential: where it was read from and whether the manifest requires it.", []string{"name", "source", "required"}, nil)
	descExpected = prometheus.NewDesc(ns+"_credentials_expected",
		"Credentials that must verify: required ones plus optional ones present.", nil, nil)
	descVerified = prometheus.NewDesc(ns+"_credentials_verified",
		"Expected credentials that verified.", nil, nil)
	descSuccess = prometheus.NewDesc(ns+"_verification_success",
		"1 when the last verification passed, 0 when it failed.", nil, nil)
	descTime = prometheus.NewDesc(ns+"_verification_timestamp_seconds",
		"Unix time of the last verification.", nil, nil)
	descVerifications = prometheus.NewDesc(ns+"_verifications_total",
		"Verifications run since start (start and each reload).", nil, nil)
	descSource = prometheus.NewDesc(ns+"_source_state",
		"How the last read of a credential source went: 1 for the current state (ok, partial, unavailable, error), 0 for the others.", []string{"source", "state"}, nil)
	descSystemd = prometheus.NewDesc(ns+"_systemd_rules_version",
		"Version of the guest's systemd whose credential import rules the agent applies; 0 when unknown (the newest rules apply).", nil, nil)
)

// Agent holds guest-agent's exported state.
type Agent struct {
	mu      sync.Mutex
	result  *verify.Result
	count   int
	sources []sources.Report
	systemd int
	ack     *prometheus.CounterVec
	ackLast prometheus.Gauge
	ackRTT  prometheus.Gauge
	ackUp   prometheus.Gauge
}

// NewAgent returns an Agent with the ack series registered at zero.
func NewAgent() *Agent {
	a := &Agent{
		ack: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "ack_attempts_total",
			Help: "Acknowledgement attempts by result: accepted, rejected (authentic refusal by the host) or error (transport, timeout, unauthenticated answer)."}, []string{"result"}),
		ackLast: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "ack_last_success_timestamp_seconds",
			Help: "Unix time the host last accepted an acknowledgement; 0 before the first."}),
		ackRTT: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "ack_round_trip_seconds",
			Help: "Duration of the last acknowledgement exchange, from dial to verdict."}),
		ackUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "ack_accepted",
			Help: "1 when the last acknowledgement was accepted by the host, else 0."}),
	}
	for _, r := range ack.AttemptResults {
		a.ack.WithLabelValues(string(r))
	}
	return a
}

// SetResult records a verification.
func (a *Agent) SetResult(r verify.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.result = &r
	a.count++
}

// SetSources records how each credential source was read.
func (a *Agent) SetSources(r []sources.Report) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sources = r
}

// SetSystemd records the systemd version whose rules apply (0: unknown).
func (a *Agent) SetSystemd(v int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.systemd = v
}

// ObserveAck records one acknowledgement attempt.
func (a *Agent) ObserveAck(result ack.AttemptResult, rtt time.Duration, at time.Time) {
	a.ack.WithLabelValues(string(result)).Inc()
	a.ackRTT.Set(rtt.Seconds())
	if result == ack.ResultAccepted {
		a.ackLast.Set(float64(at.UnixNano()) / 1e9)
		a.ackUp.Set(1)
	} else {
		a.ackUp.Set(0)
	}
}

// Describe implements prometheus.Collector.
func (a *Agent) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descBytes, descInfo, descExpected, descVerified, descSuccess, descTime, descVerifications, descSource, descSystemd} {
		ch <- d
	}
	a.ack.Describe(ch)
	a.ackLast.Describe(ch)
	a.ackRTT.Describe(ch)
	a.ackUp.Describe(ch)
}

// Collect implements prometheus.Collector.
func (a *Agent) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	r, count, reports, systemd := a.result, a.count, a.sources, a.systemd
	a.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descSystemd, prometheus.GaugeValue, float64(systemd))
	for _, s := range reports {
		for _, st := range sources.States {
			v := 0.0
			if s.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descSource, prometheus.GaugeValue, v, s.Name, string(st))
		}
	}
	a.ack.Collect(ch)
	a.ackLast.Collect(ch)
	a.ackRTT.Collect(ch)
	a.ackUp.Collect(ch)
	ch <- prometheus.MustNewConstMetric(descVerifications, prometheus.CounterValue, float64(count))
	if r == nil {
		return
	}
	for _, f := range r.Findings {
		for _, s := range credential.Statuses {
			v := 0.0
			if f.Status == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, f.Name, string(s))
		}
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(f.Bytes), f.Name)
		req := "false"
		if f.Required {
			req = "true"
		}
		ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, f.Name, f.Source, req)
	}
	ok := 0.0
	if r.OK {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(descExpected, prometheus.GaugeValue, float64(r.Expected))
	ch <- prometheus.MustNewConstMetric(descVerified, prometheus.GaugeValue, float64(r.Verified))
	ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(descTime, prometheus.GaugeValue, float64(r.Time.UnixNano())/1e9)
}

// Registry returns a registry with a, the Go and process collectors and build info.
func Registry(a *Agent) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(a, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	return reg
}

// Handler serves reg's metrics.
func Handler(reg *prometheus.Registry) http.Handler {
	// No compression: the exposition is a few KiB, and a gzip writer per scrape costs more memory
	// (and time) than it saves on a scrape of the guest next door.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError, DisableCompression: true})
}
