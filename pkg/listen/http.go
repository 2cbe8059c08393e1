package listen

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// HTTPLimits bound what peers of an HTTP server can hold: connections at once (further ones
// wait in the kernel's backlog until one closes: netutil.LimitListener) and the time a
// connection may take to send a request, to take its answer, or to sit idle between requests.
// Without them net/http keeps a keep-alive connection open forever and serves any number.
type HTTPLimits struct {
	Conns             int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration // from the end of the request headers to the end of the answer
	IdleTimeout       time.Duration // between requests on a keep-alive connection
}

// ServeHTTP serves h on l within lim in a new goroutine; Close the server to stop.
func ServeHTTP(l net.Listener, h http.Handler, lim HTTPLimits) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: lim.ReadHeaderTimeout, ReadTimeout: lim.ReadTimeout,
		WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout}
	if lim.Conns > 0 {
		l = netutil.LimitListener(l, lim.Conns)
	}
	go func() { _ = srv.Serve(l) }()
	return srv
}
