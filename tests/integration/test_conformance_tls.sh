#!/usr/bin/env bash
# RFC 7030 conformance of the TLS listener (tests/CONFORMANCE.md rows 7, 8, 9, 16): HTTPS only;
# TLS 1.2 and 1.3, not 1.0 or 1.1 even for a client that offers them; no NULL, anonymous,
# EXPORT, DES, 3DES or RC4 suite whatever the client offers (a hand-made ClientHello offers the
# suites today's OpenSSL clients no longer can); no renegotiation; session resumption; and a
# server certificate that verifies for the names clients use.
. "$(dirname "$0")/lib.sh"
provision
start_estcad

# probe.pl PORT SUITE...: one TLS 1.2 ClientHello offering only these cipher suites (hex);
# prints the server's answer: "serverhello XXXX" (the suite it chose), "alert N" or "closed".
cat > "$T/probe.pl" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;

my ($port, @suites) = @ARGV;
sub ext { my ($type, $data) = @_; return pack('nn', $type, length $data) . $data }
my $suites = join '', map { pack 'n', hex } @suites;
my $groups = pack 'n*', 0x001d, 0x0017, 0x0018;
my $sigalgs = pack 'n*', 0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501, 0x0201, 0x0203;
my $exts = ext(10, pack('n', length $groups) . $groups) . ext(11, "\x01\x00")
    . ext(13, pack('n', length $sigalgs) . $sigalgs) . ext(0xff01, "\x00");
my $hello = pack('n', 0x0303) . ("\x42" x 32) . "\x00" . pack('n', length $suites) . $suites
    . "\x01\x00" . pack('n', length $exts) . $exts;
my $handshake = "\x01" . substr(pack('N', length $hello), 1) . $hello;
my $socket = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10)
    or die "connect: $!\n";
syswrite $socket, pack('Cnn', 22, 0x0301, length $handshake) . $handshake;

sub read_exactly {
    my ($n) = @_;
    my $got = '';
    while (length $got < $n) {
        my $r = sysread $socket, my $chunk, $n - length $got;
        return undef if !$r;
        $got .= $chunk;
    }
    return $got;
}
my $header = read_exactly(5);
my ($type, undef, $length) = defined $header ? unpack('Cnn', $header) : (0, 0, 0);
my $body = defined $header ? read_exactly($length) : undef;
if (!defined $body) {
    print "closed\n";
} elsif ($type == 21) {
    printf "alert %d\n", ord substr($body, 1, 1);
} elsif ($type == 22 && ord(substr $body, 0, 1) == 2) {
    my $session_id_length = ord substr $body, 38, 1;
    printf "serverhello %04x\n", unpack 'n', substr $body, 39 + $session_id_length, 2;
} else {
    print "record $type\n";
}
PERL
probe() { perl "$T/probe.pl" "$PORT" "$@"; }
s_client() { openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/ca/tls-ca.pem" "$@" 2>&1; }
request='GET /.well-known/est/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
not() { ! "$@"; }

# ---- row 7: HTTPS only, TLS 1.2 or later ----
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/.well-known/est/cacerts" 2>/dev/null || true)
check "plain HTTP on the listener gets no HTTP answer (got $code)" [ "$code" = 000 ]
for version in 1.2 1.3; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --tlsv"$version" --tls-max "$version" \
        --cacert "$T/ca/tls-ca.pem" "$URL/cacerts" || true)
    check "TLS $version serves /cacerts (got $code)" [ "$code" = 200 ]
done
# At OpenSSL's default security level the client itself gives up on TLS 1.0/1.1 (no SHA-1
# signatures), whatever the server allows; at level 0 it goes on, so only the server refuses.
for version in tls1 tls1_1; do
    check "-$version offered at security level 0: the server answers protocol_version" \
        grep -q 'alert protocol version' <(s_client -"$version" -cipher 'DEFAULT:@SECLEVEL=0' </dev/null)
done

# ---- row 9: no NULL, anonymous, EXPORT or DES suites ----
for family in aNULL eNULL; do
    offered=$(openssl ciphers -tls1_2 "$family:@SECLEVEL=0" | tr ':' '\n' | grep -vc '^TLS_' || true)
    check "openssl s_client can offer $family suites ($offered of them)" [ "$offered" -gt 0 ]
    check "TLS 1.2 offering only $family suites: handshake_failure" \
        grep -q 'alert handshake failure' <(s_client -tls1_2 -cipher "$family:@SECLEVEL=0" </dev/null)
done
check "control: the ClientHello probe gets a ServerHello for ECDHE-ECDSA-AES128-GCM-SHA256" \
    [ "$(probe c02b)" = "serverhello c02b" ]
declare -A families=(
    [NULL]="0001 0002 003b c001 c006 c010 c015"
    [anonymous]="0018 001b 0034 003a 006c 006d 00a6 00a7 c016 c017 c018 c019"
    [EXPORT]="0003 0006 0008 000b 000e 0011 0014 0017 0019 0062 0063 0064 0065"
    [DES]="0009 000c 000f 0012 0015 001a"
    [3DES]="000a 000d 0010 0013 0016 c003 c008 c00d c012"
    [RC4]="0004 0005 c002 c007 c00c c011"
)
for family in NULL anonymous EXPORT DES 3DES RC4; do
    # shellcheck disable=SC2086 # one argument per suite
    answer=$(probe ${families[$family]})
    check "a ClientHello offering only $family suites: handshake_failure (got $answer)" [ "$answer" = "alert 40" ]
done
chosen=$(s_client -tls1_2 -cipher 'eNULL:aNULL:ECDHE-ECDSA-AES128-SHA:ALL:@SECLEVEL=0' </dev/null |
    sed -n 's/^New, TLSv1.2, Cipher is //p' || true)
check "a TLS 1.2 client preferring NULL, anonymous and CBC suites gets ECDHE + AEAD ($chosen)" \
    grep -qE '^ECDHE-[A-Z]+-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$' <<<"$chosen"

# ---- row 16: renegotiation is refused (RFC 5746 is announced all the same) ----
renegotiation=$( (sleep 1; printf 'R\n'; sleep 1; printf "$request"; sleep 1) | s_client -tls1_2 || true)
check "secure renegotiation (RFC 5746) is announced" grep -q 'Secure Renegotiation IS supported' <<<"$renegotiation"
check "a client-initiated renegotiation is refused" grep -q 'no renegotiation' <<<"$renegotiation"
check "... and nothing is served on that connection afterwards" not grep -q '^HTTP/' <<<"$renegotiation"

# ---- row 7: session resumption ----
resumed() { # s_client arguments: a second connection resumes the first one's session
    rm -f "$T/session.pem"
    printf "$request" | s_client "$@" -sess_out "$T/session.pem" -ign_eof >/dev/null
    [ -s "$T/session.pem" ] && printf "$request" | s_client "$@" -sess_in "$T/session.pem" -ign_eof | grep '^Reused, ' >/dev/null
}
check "TLS 1.3 resumes a session (ticket)" resumed -tls1_3
check "TLS 1.2 resumes a session (ticket)" resumed -tls1_2
check "TLS 1.2 resumes a session from the server's cache (no ticket)" resumed -tls1_2 -no_ticket

# ---- row 8: the server certificate verifies for what clients connect to ----
verified() { s_client "$@" -verify_return_error </dev/null | grep 'Verify return code: 0 (ok)' >/dev/null; }
check "the server certificate verifies for IP 127.0.0.1" verified -verify_ip 127.0.0.1
check "... and for localhost" verified -verify_hostname localhost
check "... but not for another name" not verified -verify_hostname est.example.com

stop_estcad
finish
