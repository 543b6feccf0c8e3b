// Package e2e holds the end-to-end tests of geodnsd: the real binary, started
// as a process on loopback, compared answer by answer with a reference
// nameserver (NSD) serving the same zone files. It has no code outside its
// tests; see README.md for how to run them and for the differences that are
// accepted on purpose.
package e2e
