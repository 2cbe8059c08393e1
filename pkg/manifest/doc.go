// Package manifest parses credlink's manifest: the credentials a guest must receive, with the
// rules each must satisfy, shared by guest-agent (verification) and host-launcher (pre-flight
// checks of the host-side files).
//
// The format is strict JSON: unknown fields, duplicate keys, invalid credential names, wrong
// types and contradictory rules are errors that name the JSON path and line.
//
//	{"credentials": {
//	   "API_KEY":     {"bytes": 44},
//	   "JWT_SECRET":  {"min_bytes": 64, "max_bytes": 128},
//	   "ENVIRONMENT": {"secret": false, "sha256": "…64 hex…"},
//	   "CLUSTER":     {"secret": false, "optional": true}},
//	 "unexpected": "warn"}
package manifest
