// Package metrics exports guest-agent's state to Prometheus under the credlink_ prefix, in the
// style of node_exporter collectors: the verification result is kept as plain state and turned
// into samples on every scrape. Labels carry credential names, statuses and sources — never a
// value, digest or prefix of one.
package metrics
