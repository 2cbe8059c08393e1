package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
)

// The cloud-hypervisor API socket stays private (0700 runtime directory) because vm.info echoes
// the OEM strings. Operators who need ch-remote get --api-proxy: a socket that forwards the
// read-only and lifecycle endpoints, answers vm.info with the credentials redacted, and refuses
// everything that could read guest memory (snapshot, coredump, migration) or change the VM's
// devices or credentials (vm.create, vm.add-*, vm.remove-device, vm.restore, vm.delete).
var proxyAllowed = map[string]string{
	"vmm.ping":         http.MethodGet,
	"vm.info":          http.MethodGet,
	"vm.counters":      http.MethodGet,
	"vm.pause":         http.MethodPut,
	"vm.resume":        http.MethodPut,
	"vm.power-button":  http.MethodPut,
	"vm.reboot":        http.MethodPut,
	"vm.shutdown":      http.MethodPut,
	"vm.resize":        http.MethodPut,
	"vm.balloon-stats": http.MethodGet,
}

// proxyLimits bound what clients of the API proxy can hold. The write timeout covers the 30 s a
// forwarded call may take (serve).
var proxyLimits = listen.HTTPLimits{Conns: 32, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
	WriteTimeout: 40 * time.Second, IdleTimeout: 5 * time.Second}

// apiProxy serves the filtered API on a Unix socket.
type apiProxy struct {
	ch  *chVM
	srv *http.Server
	l   net.Listener
}

func startAPIProxy(ch *chVM, path string) (*apiProxy, error) {
	l, err := listen.Unix(path)
	if err != nil {
		return nil, fmt.Errorf("--api-proxy: %w", err)
	}
	// listen.Unix made it 0600: the launcher's user, like ch-remote as root. Loosen with a
	// group-owned directory if operators need more.
	p := &apiProxy{ch: ch, l: l}
	p.srv = listen.ServeHTTP(l, http.HandlerFunc(p.serve), proxyLimits)
	return p, nil
}

// close stops serving; listen.Unix's listener removes its socket file on close.
func (p *apiProxy) close() { _ = p.srv.Close() }

func (p *apiProxy) serve(w http.ResponseWriter, r *http.Request) {
	endpoint := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	method, ok := proxyAllowed[endpoint]
	if !ok || r.Method != method {
		http.Error(w, fmt.Sprintf("host-launcher API proxy: %s %s is not forwarded: it could read guest memory or change the VM's devices or credentials", r.Method, r.URL.Path), http.StatusForbidden)
		return
	}
	var body any
	if r.Body != nil && r.ContentLength != 0 {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(bytes.TrimSpace(b)) > 0 {
			body = json.RawMessage(b)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	resp, err := p.ch.call(ctx, method, endpoint, body)
	if err != nil {
		if ae, ok := err.(*APIError); ok {
			http.Error(w, ae.Body, ae.Status)
			return
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if endpoint == "vm.info" {
		resp = redactVMInfo(resp)
	}
	if len(resp) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
}

// redactVMInfo replaces every credential OEM string in a vm.info answer by its name and length.
// An answer it cannot parse is withheld entirely rather than passed on.
func redactVMInfo(b []byte) []byte {
	var info map[string]any
	if json.Unmarshal(b, &info) != nil {
		return []byte(`{"error":"vm.info withheld: could not redact it"}`)
	}
	if cfg, ok := info["config"].(map[string]any); ok {
		if plat, ok := cfg["platform"].(map[string]any); ok {
			if strs, ok := plat["oem_strings"].([]any); ok {
				for i, s := range strs {
					str, _ := s.(string)
					strs[i] = credential.RedactOEMString(str)
				}
			}
		}
	}
	out, _ := json.Marshal(info)
	return out
}
