package gpgerr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Code is a gpg-error code. Errno-derived codes carry the 0x8000
// system-error bit (GPG_ERR_SYSTEM_ERROR) plus libgpg-error's errno index.
type Code uint32

// SystemErrorBit marks codes derived from an errno value.
const SystemErrorBit Code = 1 << 15

// gpg-error codes (libgpg-error's err-codes.h); names follow GPG_ERR_*.
const (
	ErrNoError               Code = 0
	ErrGeneral               Code = 1
	ErrDigestAlgo            Code = 5
	ErrBadSignature          Code = 8
	ErrNoPubkey              Code = 9
	ErrChecksum              Code = 10
	ErrNoValue               Code = 26
	ErrNotFound              Code = 27
	ErrBadCert               Code = 36
	ErrTimeConflict          Code = 39
	ErrInvArg                Code = 45
	ErrBadURI                Code = 46
	ErrInvURI                Code = 47
	ErrBadCertChain          Code = 56
	ErrMissingCert           Code = 57
	ErrNoData                Code = 58
	ErrBug                   Code = 59
	ErrNotSupported          Code = 60
	ErrTimeout               Code = 62
	ErrInvObj                Code = 65
	ErrTooLarge              Code = 67
	ErrNotImplemented        Code = 69
	ErrTruncated             Code = 74
	ErrAssuanServerFault     Code = 80
	ErrInvSexp               Code = 83
	ErrInvName               Code = 88
	ErrNoDirmngr             Code = 92
	ErrCertRevoked           Code = 94
	ErrNoCRLKnown            Code = 95
	ErrCRLTooOld             Code = 96
	ErrNotTrusted            Code = 98
	ErrCanceled              Code = 99
	ErrBadCACert             Code = 100
	ErrCertExpired           Code = 101
	ErrCertTooYoung          Code = 102
	ErrUnsupportedCert       Code = 103
	ErrConfiguration         Code = 115
	ErrWrongKeyUsage         Code = 125
	ErrNoPolicyMatch         Code = 116
	ErrMissingValue          Code = 128
	ErrInvCRL                Code = 133
	ErrBadBER                Code = 134
	ErrInvEngine             Code = 150
	ErrDupValue              Code = 157
	ErrInvCRLObj             Code = 162
	ErrUnsupportedCRLVersion Code = 163
	ErrInvCertObj            Code = 164
	ErrUnknownCritExtn       Code = 172
	ErrUnknownOption         Code = 174
	ErrUnknownCommand        Code = 175
	ErrNotEnabled            Code = 179
	ErrMissingIssuerCert     Code = 185
	ErrNoName                Code = 220
	ErrForbidden             Code = 251
	ErrFalse                 Code = 256
	ErrAssGeneral            Code = 257
	ErrAssConnectFailed      Code = 259
	ErrAssInvResponse        Code = 260
	ErrAssInvValue           Code = 261
	ErrAssIncompleteLine     Code = 262
	ErrAssLineTooLong        Code = 263
	ErrAssNestedCommands     Code = 264
	ErrAssNoInquireCb        Code = 266
	ErrAssTooMuchData        Code = 273
	ErrAssUnexpectedCmd      Code = 274
	ErrAssUnknownCmd         Code = 275
	ErrAssSyntax             Code = 276
	ErrAssCanceled           Code = 277
	ErrAssParameter          Code = 280
	ErrAssUnknownInquire     Code = 281
	ErrEOF                   Code = 16383
	ErrEIO                   Code = SystemErrorBit | 49
	ErrENOENT                Code = SystemErrorBit | 81
	ErrEPERM                 Code = SystemErrorBit | 107
)

type codeInfo struct{ name, text string }

var codeTable = map[Code]codeInfo{
	ErrNoError:               {"GPG_ERR_NO_ERROR", "Success"},
	ErrGeneral:               {"GPG_ERR_GENERAL", "General error"},
	ErrDigestAlgo:            {"GPG_ERR_DIGEST_ALGO", "Invalid digest algorithm"},
	ErrBadSignature:          {"GPG_ERR_BAD_SIGNATURE", "Bad signature"},
	ErrNoPubkey:              {"GPG_ERR_NO_PUBKEY", "No public key"},
	ErrChecksum:              {"GPG_ERR_CHECKSUM", "Checksum error"},
	ErrNoValue:               {"GPG_ERR_NO_VALUE", "No value"},
	ErrNotFound:              {"GPG_ERR_NOT_FOUND", "Not found"},
	ErrBadCert:               {"GPG_ERR_BAD_CERT", "Bad certificate"},
	ErrTimeConflict:          {"GPG_ERR_TIME_CONFLICT", "Time conflict"},
	ErrInvArg:                {"GPG_ERR_INV_ARG", "Invalid argument"},
	ErrBadURI:                {"GPG_ERR_BAD_URI", "Syntax error in URI"},
	ErrInvURI:                {"GPG_ERR_INV_URI", "Invalid URI"},
	ErrBadCertChain:          {"GPG_ERR_BAD_CERT_CHAIN", "Bad certificate chain"},
	ErrMissingCert:           {"GPG_ERR_MISSING_CERT", "Missing certificate"},
	ErrNoData:                {"GPG_ERR_NO_DATA", "No data"},
	ErrBug:                   {"GPG_ERR_BUG", "Bug"},
	ErrNotSupported:          {"GPG_ERR_NOT_SUPPORTED", "Not supported"},
	ErrTimeout:               {"GPG_ERR_TIMEOUT", "Timeout"},
	ErrInvObj:                {"GPG_ERR_INV_OBJ", "Invalid object"},
	ErrTooLarge:              {"GPG_ERR_TOO_LARGE", "Provided object is too large"},
	ErrNotImplemented:        {"GPG_ERR_NOT_IMPLEMENTED", "Not implemented"},
	ErrTruncated:             {"GPG_ERR_TRUNCATED", "Result truncated"},
	ErrAssuanServerFault:     {"GPG_ERR_ASSUAN_SERVER_FAULT", "Unspecific Assuan server fault"},
	ErrInvSexp:               {"GPG_ERR_INV_SEXP", "Invalid S-expression"},
	ErrInvName:               {"GPG_ERR_INV_NAME", "Invalid name"},
	ErrNoDirmngr:             {"GPG_ERR_NO_DIRMNGR", "No dirmngr"},
	ErrCertRevoked:           {"GPG_ERR_CERT_REVOKED", "Certificate revoked"},
	ErrNoCRLKnown:            {"GPG_ERR_NO_CRL_KNOWN", "No CRL known"},
	ErrCRLTooOld:             {"GPG_ERR_CRL_TOO_OLD", "CRL too old"},
	ErrNotTrusted:            {"GPG_ERR_NOT_TRUSTED", "Not trusted"},
	ErrCanceled:              {"GPG_ERR_CANCELED", "Operation cancelled"},
	ErrBadCACert:             {"GPG_ERR_BAD_CA_CERT", "Bad CA certificate"},
	ErrCertExpired:           {"GPG_ERR_CERT_EXPIRED", "Certificate expired"},
	ErrCertTooYoung:          {"GPG_ERR_CERT_TOO_YOUNG", "Certificate too young"},
	ErrUnsupportedCert:       {"GPG_ERR_UNSUPPORTED_CERT", "Unsupported certificate"},
	ErrConfiguration:         {"GPG_ERR_CONFIGURATION", "Configuration error"},
	ErrWrongKeyUsage:         {"GPG_ERR_WRONG_KEY_USAGE", "Wrong key usage"},
	ErrNoPolicyMatch:         {"GPG_ERR_NO_POLICY_MATCH", "No policy match"},
	ErrMissingValue:          {"GPG_ERR_MISSING_VALUE", "Missing value"},
	ErrInvCRL:                {"GPG_ERR_INV_CRL", "Invalid CRL"},
	ErrBadBER:                {"GPG_ERR_BAD_BER", "BER error"},
	ErrInvEngine:             {"GPG_ERR_INV_ENGINE", "Invalid crypto engine"},
	ErrDupValue:              {"GPG_ERR_DUP_VALUE", "Duplicated value"},
	ErrInvCRLObj:             {"GPG_ERR_INV_CRL_OBJ", "Invalid CRL object"},
	ErrUnsupportedCRLVersion: {"GPG_ERR_UNSUPPORTED_CRL_VERSION", "Unsupported CRL version"},
	ErrInvCertObj:            {"GPG_ERR_INV_CERT_OBJ", "Invalid certificate object"},
	ErrUnknownCritExtn:       {"GPG_ERR_UNKNOWN_CRIT_EXTN", "Unknown critical extension"},
	ErrUnknownOption:         {"GPG_ERR_UNKNOWN_OPTION", "Unknown option"},
	ErrUnknownCommand:        {"GPG_ERR_UNKNOWN_COMMAND", "Unknown command"},
	ErrNotEnabled:            {"GPG_ERR_NOT_ENABLED", "Not enabled"},
	ErrMissingIssuerCert:     {"GPG_ERR_MISSING_ISSUER_CERT", "Missing issuer certificate"},
	ErrNoName:                {"GPG_ERR_NO_NAME", "No name"},
	ErrForbidden:             {"GPG_ERR_FORBIDDEN", "Forbidden"},
	ErrFalse:                 {"GPG_ERR_FALSE", "False"},
	ErrAssGeneral:            {"GPG_ERR_ASS_GENERAL", "General IPC error"},
	ErrAssConnectFailed:      {"GPG_ERR_ASS_CONNECT_FAILED", "IPC connect call failed"},
	ErrAssInvResponse:        {"GPG_ERR_ASS_INV_RESPONSE", "Invalid IPC response"},
	ErrAssInvValue:           {"GPG_ERR_ASS_INV_VALUE", "Invalid value passed to IPC"},
	ErrAssIncompleteLine:     {"GPG_ERR_ASS_INCOMPLETE_LINE", "Incomplete line passed to IPC"},
	ErrAssLineTooLong:        {"GPG_ERR_ASS_LINE_TOO_LONG", "Line passed to IPC too long"},
	ErrAssNestedCommands:     {"GPG_ERR_ASS_NESTED_COMMANDS", "Nested IPC commands"},
	ErrAssNoInquireCb:        {"GPG_ERR_ASS_NO_INQUIRE_CB", "No inquire callback in IPC"},
	ErrAssTooMuchData:        {"GPG_ERR_ASS_TOO_MUCH_DATA", "Too much data for IPC layer"},
	ErrAssUnexpectedCmd:      {"GPG_ERR_ASS_UNEXPECTED_CMD", "Unexpected IPC command"},
	ErrAssUnknownCmd:         {"GPG_ERR_ASS_UNKNOWN_CMD", "Unknown IPC command"},
	ErrAssSyntax:             {"GPG_ERR_ASS_SYNTAX", "IPC syntax error"},
	ErrAssCanceled:           {"GPG_ERR_ASS_CANCELED", "IPC call has been cancelled"},
	ErrAssParameter:          {"GPG_ERR_ASS_PARAMETER", "IPC parameter error"},
	ErrAssUnknownInquire:     {"GPG_ERR_ASS_UNKNOWN_INQUIRE", "Unknown IPC inquire"},
	ErrEOF:                   {"GPG_ERR_EOF", "End of file"},
}

// errnoNames is libgpg-error's errnos.in: the index of each errno name is
// the low bits of its system-error code.
var errnoNames = strings.Fields(`E2BIG EACCES EADDRINUSE EADDRNOTAVAIL EADV EAFNOSUPPORT EAGAIN EALREADY
EAUTH EBACKGROUND EBADE EBADF EBADFD EBADMSG EBADR EBADRPC EBADRQC EBADSLT EBFONT EBUSY ECANCELED ECHILD
ECHRNG ECOMM ECONNABORTED ECONNREFUSED ECONNRESET ED EDEADLK EDEADLOCK EDESTADDRREQ EDIED EDOM EDOTDOT
EDQUOT EEXIST EFAULT EFBIG EFTYPE EGRATUITOUS EGREGIOUS EHOSTDOWN EHOSTUNREACH EIDRM EIEIO EILSEQ
EINPROGRESS EINTR EINVAL EIO EISCONN EISDIR EISNAM EL2HLT EL2NSYNC EL3HLT EL3RST ELIBACC ELIBBAD ELIBEXEC
ELIBMAX ELIBSCN ELNRNG ELOOP EMEDIUMTYPE EMFILE EMLINK EMSGSIZE EMULTIHOP ENAMETOOLONG ENAVAIL ENEEDAUTH
ENETDOWN ENETRESET ENETUNREACH ENFILE ENOANO ENOBUFS ENOCSI ENODATA ENODEV ENOENT ENOEXEC ENOLCK ENOLINK
ENOMEDIUM ENOMEM ENOMSG ENONET ENOPKG ENOPROTOOPT ENOSPC ENOSR ENOSTR ENOSYS ENOTBLK ENOTCONN ENOTDIR
ENOTEMPTY ENOTNAM ENOTSOCK ENOTSUP ENOTTY ENOTUNIQ ENXIO EOPNOTSUPP EOVERFLOW EPERM EPFNOSUPPORT EPIPE
EPROCLIM EPROCUNAVAIL EPROGMISMATCH EPROGUNAVAIL EPROTO EPROTONOSUPPORT EPROTOTYPE ERANGE EREMCHG EREMOTE
EREMOTEIO ERESTART EROFS ERPCMISMATCH ESHUTDOWN ESOCKTNOSUPPORT ESPIPE ESRCH ESRMNT ESTALE ESTRPIPE ETIME
ETIMEDOUT ETOOMANYREFS ETXTBSY EUCLEAN EUNATCH EUSERS EWOULDBLOCK EXDEV EXFULL`)

// linuxErrno maps errno names to Linux values (those libgpg-error knows and
// Linux defines).
var linuxErrno = map[string]syscall.Errno{
	"E2BIG": syscall.E2BIG, "EACCES": syscall.EACCES, "EADDRINUSE": syscall.EADDRINUSE,
	"EADDRNOTAVAIL": syscall.EADDRNOTAVAIL, "EAFNOSUPPORT": syscall.EAFNOSUPPORT, "EAGAIN": syscall.EAGAIN,
	"EALREADY": syscall.EALREADY, "EBADF": syscall.EBADF, "EBADMSG": syscall.EBADMSG, "EBUSY": syscall.EBUSY,
	"ECANCELED": syscall.ECANCELED, "ECHILD": syscall.ECHILD, "ECONNABORTED": syscall.ECONNABORTED,
	"ECONNREFUSED": syscall.ECONNREFUSED, "ECONNRESET": syscall.ECONNRESET, "EDEADLK": syscall.EDEADLK,
	"EDESTADDRREQ": syscall.EDESTADDRREQ, "EDOM": syscall.EDOM, "EDQUOT": syscall.EDQUOT, "EEXIST": syscall.EEXIST,
	"EFAULT": syscall.EFAULT, "EFBIG": syscall.EFBIG, "EHOSTDOWN": syscall.EHOSTDOWN, "EHOSTUNREACH": syscall.EHOSTUNREACH,
	"EILSEQ": syscall.EILSEQ, "EINPROGRESS": syscall.EINPROGRESS, "EINTR": syscall.EINTR, "EINVAL": syscall.EINVAL,
	"EIO": syscall.EIO, "EISCONN": syscall.EISCONN, "EISDIR": syscall.EISDIR, "ELOOP": syscall.ELOOP,
	"EMFILE": syscall.EMFILE, "EMLINK": syscall.EMLINK, "EMSGSIZE": syscall.EMSGSIZE, "ENAMETOOLONG": syscall.ENAMETOOLONG,
	"ENETDOWN": syscall.ENETDOWN, "ENETRESET": syscall.ENETRESET, "ENETUNREACH": syscall.ENETUNREACH,
	"ENFILE": syscall.ENFILE, "ENOBUFS": syscall.ENOBUFS, "ENODATA": syscall.ENODATA, "ENODEV": syscall.ENODEV,
	"ENOENT": syscall.ENOENT, "ENOEXEC": syscall.ENOEXEC, "ENOLCK": syscall.ENOLCK, "ENOMEM": syscall.ENOMEM,
	"ENOSPC": syscall.ENOSPC, "ENOSYS": syscall.ENOSYS, "ENOTCONN": syscall.ENOTCONN, "ENOTDIR": syscall.ENOTDIR,
	"ENOTEMPTY": syscall.ENOTEMPTY, "ENOTSOCK": syscall.ENOTSOCK, "ENOTSUP": syscall.ENOTSUP, "ENOTTY": syscall.ENOTTY,
	"ENXIO": syscall.ENXIO, "EOVERFLOW": syscall.EOVERFLOW, "EPERM": syscall.EPERM, "EPIPE": syscall.EPIPE,
	"EPROTO": syscall.EPROTO, "ERANGE": syscall.ERANGE, "EROFS": syscall.EROFS, "ESPIPE": syscall.ESPIPE,
	"ESRCH": syscall.ESRCH, "ESTALE": syscall.ESTALE, "ETIMEDOUT": syscall.ETIMEDOUT, "ETXTBSY": syscall.ETXTBSY,
	"EXDEV": syscall.EXDEV,
}

var errnoCode = func() map[syscall.Errno]Code {
	m := map[syscall.Errno]Code{}
	for i, name := range errnoNames {
		if e, ok := linuxErrno[name]; ok {
			if _, dup := m[e]; !dup { // EAGAIN/EWOULDBLOCK etc. share values
				m[e] = SystemErrorBit | Code(i)
			}
		}
	}
	return m
}()

// Name returns the gpg-error name, e.g. "GPG_ERR_NO_CRL_KNOWN".
func (c Code) Name() string {
	if info, ok := codeTable[c]; ok {
		return info.name
	}
	if c&SystemErrorBit != 0 && int(c&^SystemErrorBit) < len(errnoNames) {
		return "GPG_ERR_" + errnoNames[c&^SystemErrorBit]
	}
	return fmt.Sprintf("GPG_ERR_CODE_%d", uint32(c))
}

// Error returns the gpg-error text, e.g. "No CRL known".
func (c Code) Error() string {
	if info, ok := codeTable[c]; ok {
		return info.text
	}
	if c&SystemErrorBit != 0 && int(c&^SystemErrorBit) < len(errnoNames) {
		if e, ok := linuxErrno[errnoNames[c&^SystemErrorBit]]; ok {
			s := e.Error()
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return fmt.Sprintf("Unknown error code %d", uint32(c))
}

// Source is a gpg-error source: the component an error comes from.
type Source uint8

// Error sources used here.
const (
	SourceUnknown Source = 0
	SourceGcrypt  Source = 1
	SourceGPGSM   Source = 3
	SourceKSBA    Source = 9
	SourceDirmngr Source = 10
	SourceAssuan  Source = 15
)

// String returns the source's name as libgpg-error prints it.
func (s Source) String() string {
	switch s {
	case SourceUnknown:
		return "Unspecified source"
	case SourceGcrypt:
		return "gcrypt"
	case SourceGPGSM:
		return "GPGSM"
	case SourceKSBA:
		return "KSBA"
	case SourceDirmngr:
		return "Dirmngr"
	case SourceAssuan:
		return "Assuan"
	}
	return fmt.Sprintf("Source %d", uint8(s))
}

// WireValue returns the number sent in an ERR line: (source<<24)|code.
func WireValue(src Source, c Code) uint32 { return uint32(src&0x7f)<<24 | uint32(c&0xffff) }

// ParseWireValue splits an ERR number into source and code.
func ParseWireValue(n uint32) (Source, Code) { return Source((n >> 24) & 0x7f), Code(n & 0xffff) }

// Error is a gpg-error with an optional source, the detail text sent after
// " - " on the wire, and a cause kept for logs only.
type Error struct {
	Code   Code
	Source Source // 0 = the server's default source
	Detail string
	Err    error
}

// Error describes e for logs.
func (e *Error) Error() string {
	s := e.Code.Error()
	if e.Detail != "" {
		s += " - " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the same code (a Code or an *Error).
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return e.Code == t
	case *Error:
		return e.Code == t.Code
	}
	return false
}

// NewError returns an error with a detail text sent to the client.
func NewError(code Code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// Errorf returns an error whose detail text is formatted.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns code with a cause that is logged but never sent.
func Wrap(code Code, cause error) *Error { return &Error{Code: code, Err: cause} }

// WithSource returns code attributed to source src (e.g. KSBA).
func WithSource(code Code, src Source) *Error { return &Error{Code: code, Source: src} }

// ErrorFromOS maps an operating-system error to its errno-derived code
// (ENOENT → 32849 "No such file or directory"); other errors become
// ErrGeneral. The cause is kept.
func ErrorFromOS(err error) *Error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if c, ok := errnoCode[errno]; ok {
			return &Error{Code: c, Err: err}
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return &Error{Code: ErrENOENT, Err: err}
	}
	return &Error{Code: ErrGeneral, Err: err}
}

// CodeOf returns the gpg-error code best describing err.
func CodeOf(err error) Code {
	// The common cases without errors.As, whose target escapes (an
	// allocation per call, several per failed command).
	switch e := err.(type) {
	case nil:
		return ErrNoError
	case Code:
		return e
	case *Error:
		return e.Code
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var c Code
	if errors.As(err, &c) {
		return c
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	if errors.Is(err, context.Canceled) {
		return ErrCanceled
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return ErrorFromOS(err).Code
	}
	return ErrGeneral
}

// SourceOf returns the source recorded in err (0 if none).
func SourceOf(err error) Source {
	switch e := err.(type) {
	case nil, Code:
		return SourceUnknown
	case *Error:
		return e.Source
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Source
	}
	return SourceUnknown
}

// DetailOf returns the detail text of err ("" if none).
func DetailOf(err error) string {
	switch e := err.(type) {
	case nil, Code:
		return ""
	case *Error:
		return e.Detail
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return ""
}
