// Package assuan implements the Assuan IPC protocol as GnuPG's libassuan
// 2.5 speaks it on Unix sockets and pipes: the server side (greeting,
// line limits, built-in commands, OPTION pre-parsing, HELP, status, data
// and INQUIRE handling, ERR lines with gpg-error numbers), a client, the
// escaping rules and the gpg-error codes. It knows nothing about dirmngr:
// applications register their commands and choose their error source.
//
// A line is at most 1001 bytes plus LF on input (longer lines end the
// connection without a reply, as libassuan does) and at most 1000 bytes
// plus LF on output. Replies use bare LF; a CR before LF is accepted.
package assuan
