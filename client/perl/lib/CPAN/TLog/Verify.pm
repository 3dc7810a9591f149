package CPAN::TLog::Verify;

# CPAN::TLog::Verify - verify a CPAN file against cpan-tlog, offline, from
# a c2sp.org/tlog-proof@v1 and a trust policy. Pure Perl plus CryptX for
# Ed25519. See the POD at the end.

use strict;
use warnings;
use Carp ();
use Digest::SHA ();
use MIME::Base64 ();
use File::Path ();
use File::Spec ();
use Crypt::PK::Ed25519 ();
use Exporter 'import';

our $VERSION = '1.00';
our @EXPORT_OK = qw(parse_policy parse_proof verify_checkpoint verify_inclusion verify_file
    EXIT_OK EXIT_NOT_VERIFIED EXIT_USAGE EXIT_SECURITY);

use constant {
    EXIT_OK           => 0,    # verified
    EXIT_NOT_VERIFIED => 1,    # not in the log, mismatch, quorum not met, unknown key, bad signature
    EXIT_USAGE        => 2,    # bad input: usage, unreadable file, not a tlog-proof or policy
    EXIT_SECURITY     => 3,    # evidence signed by a trusted key: a fork
};

use constant {
    PROOF_HEADER     => 'c2sp.org/tlog-proof@v1',
    # A checkpoint of up to 128 KiB (16 signatures of 5 kB, as C2SP
    # signed-note asks) and the rest of a proof: tlogproof.MaxSize in Go.
    MAX_PROOF_SIZE   => 144 * 1024,
    MAX_CHECKPOINT_SIZE => 128 * 1024,    # client.MaxCheckpointSize
    MAX_PROOF_HASHES => 63,
    MAX_POLICY_SIZE  => 1024 * 1024,
    EM_DASH          => "\xe2\x80\x94",
};

# An error carries the exit code it deserves.
sub _fail { my ($code, $msg) = @_; die bless { code => $code, message => $msg }, 'CPAN::TLog::Verify::Error' }
sub _not_verified { _fail(EXIT_NOT_VERIFIED, "not verified: $_[0]") }
sub _security     { _fail(EXIT_SECURITY, "SECURITY ERROR: $_[0]") }
sub _malformed    { _fail(EXIT_USAGE, $_[0]) }
sub _could_not_check { _fail(EXIT_USAGE, "could not check: $_[0]") }

# Strict, canonical standard base64, as Go's StdEncoding.Strict().
sub _b64 {
    my ($s) = @_;
    return undef unless defined $s && $s =~ m{\A[A-Za-z0-9+/]*={0,2}\z} && length($s) % 4 == 0;
    my $b = MIME::Base64::decode_base64($s);
    return undef unless MIME::Base64::encode_base64($b, '') eq $s;
    return $b;
}

# _utf8($bytes): the characters $bytes encode when they are valid UTF-8
# as Go's unicode/utf8 reads it (RFC 3629: no surrogates, no overlong
# forms, nothing above U+10FFFF; noncharacters such as U+FFFE are valid),
# else undef. Encode's strict 'UTF-8' also refuses noncharacters, so with
# it the two verifiers read one note or path differently.
my $UTF8_TOKEN = qr/[\x00-\x7f]+|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}/;

sub _utf8 {
    my ($b) = @_;
    return undef if !defined $b || $b =~ /[^\x00-\xff]/;
    # UTF-8 is prefix-free: taking valid sequences from the left leaves
    # nothing exactly when every byte belongs to one.
    return undef if length($b =~ s/$UTF8_TOKEN//gr);
    my $chars = $b;
    utf8::decode($chars) or return undef;
    return $chars;
}

# A note verifier key: name+hash+base64(type || public key).
sub _parse_vkey {
    my ($vkey, $want_type) = @_;
    my ($name, $hash, $key) = $vkey =~ /\A([^+\s]+)\+([0-9a-f]{8})\+(\S+)\z/ or return undef;
    my $raw = _b64($key);
    return undef unless defined $raw && length($raw) == 33 && ord(substr($raw, 0, 1)) == $want_type;
    my $computed = substr(Digest::SHA::sha256("$name\n$raw"), 0, 4);
    return undef unless unpack('H8', $computed) eq $hash;
    my $pk = eval { Crypt::PK::Ed25519->new->import_key_raw(substr($raw, 1), 'public') } or return undef;
    return { name => $name, hash => $computed, key => $pk, vkey => $vkey, pub => substr($raw, 1) };
}

# The policy format's words are no names (Tessera's parser, and so the
# Go client and the log, refuse them); 'none' is the predefined quorum.
my @KEYWORDS = qw(log witness group quorum any all none);
sub _keyword {
    my ($name) = @_;
    return (grep { $_ eq $name } @KEYWORDS) ? "'$name' is a word of the policy format (" . join(', ', @KEYWORDS) . '), not a name for a witness or group' : '';
}

# parse_policy($text): the trust policy, as the Go client reads it: 'log
# <vkey> [<url>]', 'witness <name> <vkey> [<url>]', 'group <name>
# any|all|<n> <member>...', 'quorum <name>|none'; '#' comments.
sub parse_policy {
    my ($text) = @_;
    _malformed('policy is larger than 1 MiB') if length($text) > MAX_POLICY_SIZE;
    my (%p, %names, %keys);
    $p{logs} = [];
    my $n = 0;
    # C2SP tlog-policy: one line per public key, for logs and for
    # witnesses (two witness lines with one key would count one
    # cosignature twice); the error names both lines, as the Go parser's.
    my $once = sub {
        my ($kind, $name, $k, $bad) = @_;
        if (my $o = $keys{$kind}{ $k->{pub} }) {
            $bad->("$kind '$name' has the same public key as $kind '$o->[0]' on line $o->[1]: C2SP tlog-policy allows one $kind line per key (one signature would count twice); remove one of the two lines");
        }
        $keys{$kind}{ $k->{pub} } = [ $name, $n ];
    };
    for my $line (split /\n/, $text) {
        $n++;
        $line =~ s/#.*//;
        my @f = split ' ', $line;
        next unless @f;
        my $bad = sub { _malformed("policy line $n: $_[0]") };
        if ($f[0] eq 'log') {
            $bad->("want 'log <vkey> [<url>]'") unless @f == 2 || @f == 3;
            my $k = _parse_vkey($f[1], 0x01) or $bad->("'$f[1]' is not an Ed25519 note verifier key");
            $bad->("'$f[2]' is not an http(s) URL") if defined $f[2] && $f[2] !~ m{\Ahttps?://[^/?#]+};
            $bad->("a second log with origin '$k->{name}'") if grep { $_->{name} eq $k->{name} } @{ $p{logs} };
            $once->('log', $k->{name}, $k, $bad);
            push @{ $p{logs} }, { %$k, url => $f[2] };
        } elsif ($f[0] eq 'witness') {
            $bad->("want 'witness <name> <vkey> [<url>]'") unless @f == 3 || @f == 4;
            $bad->("name '$f[1]' is defined twice") if $names{ $f[1] }++;
            $bad->(_keyword($f[1])) if _keyword($f[1]);
            my $k = _parse_vkey($f[2], 0x04) or $bad->("'$f[2]' is not a cosignature/v1 verifier key (type 0x04)");
            $bad->("'$f[3]' is not an http(s) URL") if defined $f[3] && $f[3] !~ m{\Ahttps?://[^/?#]+};
            $once->('witness', $f[1], $k, $bad);
            $p{witnesses}{ $f[1] } = { %$k, url => $f[3] };
        } elsif ($f[0] eq 'group') {
            $bad->("want 'group <name> any|all|<n> <member>...'") unless @f >= 4;
            $bad->("name '$f[1]' is defined twice") if $names{ $f[1] }++;
            $bad->(_keyword($f[1])) if _keyword($f[1]);
            my @members = @f[3 .. $#f];
            my $need = $f[2] eq 'any' ? 1 : $f[2] eq 'all' ? scalar(@members) : $f[2];
            $bad->("threshold '$f[2]' is not any, all or a number from 1 to " . scalar(@members))
                unless $need =~ /\A[1-9][0-9]*\z/ && $need <= @members;
            my %seen;
            for my $m (@members) {
                $bad->("member '$m' is not defined above") unless $p{witnesses}{$m} || $p{groups}{$m};
                # "group g 2 w1 w1 w2" would be met by w1 alone.
                $bad->("member '$m' is listed twice") if $seen{$m}++;
            }
            $p{groups}{ $f[1] } = { need => $need, members => \@members };
        } elsif ($f[0] eq 'quorum') {
            $bad->("want 'quorum <name>|none'") unless @f == 2;
            $bad->('quorum is given twice') if defined $p{quorum};
            $bad->("quorum '$f[1]' is not defined above") unless $f[1] eq 'none' || $p{witnesses}{ $f[1] } || $p{groups}{ $f[1] };
            $p{quorum} = $f[1];
        } else {
            $bad->("unknown keyword '$f[0]'");
        }
    }
    _malformed('policy names no log') unless @{ $p{logs} };
    $p{id} = Digest::SHA::sha256_hex($text);
    _malformed("policy has no quorum line (write 'quorum none' for no witnesses)") unless defined $p{quorum};
    return \%p;
}

# parse_proof($bytes): a c2sp.org/tlog-proof@v1, exactly as the Go client
# accepts it. Anything else is bad input (exit 2).
sub parse_proof {
    my ($b) = @_;
    _malformed('malformed tlog-proof: larger than 144 KiB') if length($b) > MAX_PROOF_SIZE;
    my $i = index($b, "\n\n");
    _malformed('malformed tlog-proof: no blank line before the checkpoint') if $i < 0;
    my ($head, $cp) = (substr($b, 0, $i), substr($b, $i + 2));
    my @lines = split /\n/, $head, -1;
    _malformed("malformed tlog-proof: first line is not '" . PROOF_HEADER . "'") unless @lines && $lines[0] eq PROOF_HEADER;
    shift @lines;
    my %p;
    if (@lines && $lines[0] =~ /\Aextra (.*)\z/s) {
        my $x = _b64($1);
        _malformed('malformed tlog-proof: extra line is not canonical non-empty base64') unless defined $x && length $x;
        $p{extra} = $x;
        shift @lines;
    }
    _malformed('malformed tlog-proof: missing index line') unless @lines;
    my ($idx) = $lines[0] =~ /\Aindex (0|[1-9][0-9]{0,19})\z/;
    # Compared as strings: as a number, 2**64 rounds to 2**64 - 1.
    _malformed('malformed tlog-proof: index line is not "index N" with N below 2**64')
        unless defined $idx && (length($idx) < 20 || $idx le '18446744073709551615');
    $p{index} = $idx;
    shift @lines;
    _malformed('malformed tlog-proof: more than 63 proof hashes') if @lines > MAX_PROOF_HASHES;
    $p{hashes} = [];
    for my $l (@lines) {
        my $h = _b64($l);
        _malformed('malformed tlog-proof: a proof line is not a base64 SHA-256 hash') unless defined $h && length($h) == 32;
        push @{ $p{hashes} }, $h;
    }
    my $j = index($cp, "\n\n");
    my ($text, $sigs) = $j < 0 ? ('', '') : (substr($cp, 0, $j), substr($cp, $j + 2));
    _malformed('malformed tlog-proof: checkpoint is not a signed note (text, blank line, signature lines)')
        unless length $text && length $sigs && $sigs =~ /\n\z/;
    _malformed('malformed tlog-proof: checkpoint has fewer than 3 text lines') if ($text =~ tr/\n//) < 2;
    for my $l (split /\n/, substr($sigs, 0, -1), -1) {
        _malformed('malformed tlog-proof: a checkpoint signature line does not start with an em dash')
            unless substr($l, 0, 4) eq EM_DASH . ' ';
    }
    $p{checkpoint} = $cp;
    return \%p;
}

# The signed note's text and signatures, as golang.org/x/mod/sumdb/note
# reads them, and as strictly as the Go client: valid UTF-8, no control
# characters but newline, at most 100 signature lines, key names that are
# non-empty, valid UTF-8 without white space or '+', signatures in
# canonical base64 of more than 4 bytes. undef when it is not such a note.
use constant MAX_SIGNATURE_LINES => 100;

sub _open_note {
    my ($cp) = @_;
    my $chars = _utf8($cp);
    return undef unless defined $chars;
    return undef if $chars =~ /[\x00-\x09\x0b-\x1f]/;
    my $j = rindex($cp, "\n\n");
    return undef if $j < 0;
    my $text = substr($cp, 0, $j + 1);
    my $sigs = substr($cp, $j + 2);
    return undef unless length $sigs && $sigs =~ /\n\z/;
    my @lines = split /\n/, $sigs;
    return undef if @lines > MAX_SIGNATURE_LINES;
    my @sigs;
    for my $l (@lines) {
        my ($name, $b64) = $l =~ /\A\xe2\x80\x94 ([^ ]+) ([^ ]+)\z/ or return undef;
        my $uname = _utf8($name) // return undef;
        return undef if $uname =~ /[\p{White_Space}+]/;
        my $raw = _b64($b64);
        return undef unless defined $raw && length($raw) > 4;
        push @sigs, { name => $name, hash => substr($raw, 0, 4), sig => substr($raw, 4) };
    }
    return { text => $text, sigs => \@sigs };
}

# Checkpoints already verified under a parsed policy, so that a batch (an
# install of a hundred distributions whose proofs share a checkpoint)
# verifies each distinct checkpoint's signatures once.
my %verified_checkpoints;

# verify_checkpoint($policy, $note): checks the log's Ed25519 signature and
# the quorum's cosignature/v1 cosignatures; returns the checkpoint (origin,
# size, root, cosigned_by). Dies with the Go client's exit codes.
sub verify_checkpoint {
    my ($policy, $cp) = @_;
    # Keyed by the policy's content (never by its address, which a new
    # policy may reuse) and the note's exact bytes.
    return _verify_checkpoint($policy, $cp) unless defined $policy->{id};
    my $key = $policy->{id} . "\0" . $cp;
    return $verified_checkpoints{$key} if $verified_checkpoints{$key};
    my $r = _verify_checkpoint($policy, $cp);
    %verified_checkpoints = () if keys %verified_checkpoints > 1000;
    return $verified_checkpoints{$key} = $r;
}

# forget_checkpoints empties the batch's memory of verified checkpoints.
sub forget_checkpoints { %verified_checkpoints = () }

sub _verify_checkpoint {
    my ($policy, $cp) = @_;
    _not_verified(sprintf('checkpoint of %d bytes is larger than %d', length $cp, MAX_CHECKPOINT_SIZE)) if length($cp) > MAX_CHECKPOINT_SIZE;
    my ($origin) = $cp =~ /\A([^\n]*)\n/;
    $origin //= '';
    my ($log) = grep { $_->{name} eq $origin } @{ $policy->{logs} };
    _not_verified("checkpoint is from log '$origin', which the policy does not name") unless $log;
    my $note = _open_note($cp) or _not_verified('checkpoint is not a well-formed signed note');
    my $signed;
    for my $s (@{ $note->{sigs} }) {
        next unless $s->{name} eq $log->{name} && $s->{hash} eq $log->{hash};
        # Bytes that do not verify are no evidence against the log (anyone
        # can flip one in transit): a refusal, never a security error.
        _not_verified("checkpoint carries a signature line by the log's key $log->{vkey} that does not verify, so the note is rejected whole")
            unless $log->{key}->verify_message($s->{sig}, $note->{text});
        $signed = 1;
    }
    unless ($signed) {
        my $by = join(', ', map { sprintf('%s+%s', $_->{name}, unpack('H8', $_->{hash})) } @{ $note->{sigs} }) || 'none';
        _not_verified(sprintf("checkpoint is not signed by the policy's log key %s+%s but by %s", $log->{name}, unpack('H8', $log->{hash}), $by));
    }
    my @lines = split /\n/, $note->{text};
    my $size = $lines[1];
    undef $size unless _decimal($size);
    my $root = _b64($lines[2] // '');
    _not_verified('checkpoint text is not origin, size, root hash') unless defined $size && defined $root && length($root) == 32;
    my %cosigned;
    for my $wname (sort keys %{ $policy->{witnesses} || {} }) {
        my $w = $policy->{witnesses}{$wname};
        for my $s (@{ $note->{sigs} }) {
            next unless $s->{name} eq $w->{name} && $s->{hash} eq $w->{hash};
            my $sig = $s->{sig};
            my $ok = length($sig) == 72 && do {
                my $ts = unpack('Q>', substr($sig, 0, 8));
                $w->{key}->verify_message(substr($sig, 8), "cosignature/v1\ntime $ts\n" . $note->{text});
            };
            _not_verified("checkpoint carries a cosignature line by witness ${wname}'s key that does not verify, so the note is rejected whole") unless $ok;
            $cosigned{$wname} = 1;
        }
    }
    unless (_satisfied($policy, $policy->{quorum}, \%cosigned)) {
        _not_verified(sprintf("checkpoint of size %s is not cosigned by the policy's quorum '%s' (cosigned by: %s)",
            $size, $policy->{quorum}, join(', ', sort keys %cosigned) || 'none'));
    }
    return { origin => $origin, size => $size, root => $root, cosigned_by => [ sort keys %cosigned ],
        log_key => $log->{vkey}, log_id => unpack('H8', $log->{hash}) };
}

sub _satisfied {
    my ($policy, $name, $cosigned) = @_;
    return 1 if $name eq 'none';
    return $cosigned->{$name} ? 1 : 0 if $policy->{witnesses}{$name};
    my $g = $policy->{groups}{$name} or return 0;
    my $n = grep { _satisfied($policy, $_, $cosigned) } @{ $g->{members} };
    return $n >= $g->{need};
}

sub _hash_leaf     { Digest::SHA::sha256("\x00" . $_[0]) }
sub _hash_children { Digest::SHA::sha256("\x01" . $_[0] . $_[1]) }

# verify_inclusion($index, $size, $leaf_hash, \@proof, $root): RFC 6962
# inclusion, as transparency-dev/merkle's proof.VerifyInclusion.
sub verify_inclusion {
    my ($index, $size, $leaf_hash, $proof, $root) = @_;
    return 0 unless $index < $size;
    # inner: the proof's length below the point where the paths to index
    # and to size-1 meet; border: the rest, on the right border.
    my $x = $index ^ ($size - 1);
    my $inner = 0;
    while ($x) { $inner++; $x >>= 1 }
    my $border = 0;
    my $y = $index >> $inner;
    while ($y) { $border += $y & 1; $y >>= 1 }
    return 0 unless @$proof == $inner + $border;
    my $h = $leaf_hash;
    for my $i (0 .. $inner - 1) {
        $h = (($index >> $i) & 1) ? _hash_children($proof->[$i], $h) : _hash_children($h, $proof->[$i]);
    }
    $h = _hash_children($_, $h) for @{$proof}[ $inner .. $#$proof ];
    return $h eq $root;
}

# The v1 entry in the proof's extra, parsed as strictly as the Go client
# does (log/entry): only what the encoder writes, byte for byte, is an
# entry. undef otherwise.
use constant MAX_ENTRY_SIZE => 8192;
my @INDEX_PATHS = qw(modules/02packages.details.txt.gz modules/02packages.details.txt
    modules/06perms.txt.gz modules/06perms.txt authors/01mailrc.txt.gz);

sub _valid_id { defined $_[0] && $_[0] =~ /\A[A-Z][A-Z0-9-]{1,31}\z/ }

# _valid_path: authors/id/A/AB/ABC/..., as internal/cpan's ValidatePath.
sub _valid_path {
    my ($p) = @_;
    my ($rest) = $p =~ m{\Aauthors/id/(.*)\z}s or return 0;
    return 0 if length($rest) > 255;
    my $chars = _utf8($rest);
    return 0 unless defined $chars;
    # U+13439..U+1343F are format characters (Cf) since Unicode 15, Go's
    # tables; older Perls do not know them yet.
    return 0 if $chars =~ /[\x00-\x20\x7f-\x9f\\\x{FFFD}\x{13439}-\x{1343F}]|\p{White_Space}|\p{Cf}/;
    my @parts = split m{/}, $rest, -1;
    return 0 if @parts < 4 || grep { $_ eq '' || $_ eq '.' || $_ eq '..' } @parts;
    my $id = $parts[2];
    return _valid_id($id) && $parts[0] eq substr($id, 0, 1) && $parts[1] eq substr($id, 0, 2);
}

sub _decimal { defined $_[0] && $_[0] =~ /\A(?:0|[1-9][0-9]{0,19})\z/ && (length($_[0]) < 20 || $_[0] le '18446744073709551615') }

sub _valid_time {
    my ($y, $mo, $d, $h, $mi, $s) = $_[0] =~ /\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z\z/ or return 0;
    return 0 if $y < 1970 || $mo < 1 || $mo > 12 || $d < 1 || $h > 23 || $mi > 59 || $s > 59;
    my $leap = ($y % 4 == 0 && $y % 100 != 0) || $y % 400 == 0;
    my $days = (31, $leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[ $mo - 1 ];
    return $d <= $days;
}

sub _parse_entry {
    my ($leaf) = @_;
    return undef if length($leaf) > MAX_ENTRY_SIZE || $leaf !~ /\n\z/;
    my @lines = split /\n/, substr($leaf, 0, -1), -1;
    return undef if @lines > 13;
    my ($kind) = (shift(@lines) // '') =~ /\Acpan-tlog\/v1 (upload|index|delete)\z/ or return undef;
    my %e = (kind => $kind);
    my @keys = $kind eq 'upload' ? qw(path size sha256 uploader time) : $kind eq 'index' ? qw(path size sha256 time) : qw(path time);
    return undef if @lines < @keys;
    for my $k (@keys) {
        my ($v) = shift(@lines) =~ /\A\Q$k\E (.+)\z/s or return undef;
        $e{$k} = $v;
    }
    if ($kind eq 'index') {
        return undef unless grep { $_ eq $e{path} } @INDEX_PATHS;
    } else {
        return undef unless _valid_path($e{path});
    }
    return undef unless _valid_time($e{time});
    if ($kind ne 'delete') {
        return undef unless _decimal($e{size}) && length($e{size}) <= 16 && $e{size} <= 9007199254740992;
        return undef unless $e{sha256} =~ /\A[0-9a-f]{64}\z/;
    }
    return undef if $kind eq 'upload' && !_valid_id($e{uploader});
    if (@lines) {
        # Only an upload may go on, with the sigstore lines in their order.
        return undef unless $kind eq 'upload';
        my @required = qw(sigstore-artifact-sha256 sigstore-issuer sigstore-san);
        my @optional = qw(sigstore-source-repo sigstore-build-config sigstore-rekor-index);
        for my $k (@required) {
            my ($v) = (shift(@lines) // '') =~ /\A\Q$k\E ([\x21-\x7e]{1,1024})\z/ or return undef;
            return undef if $k eq 'sigstore-artifact-sha256' && $v !~ /\A[0-9a-f]{64}\z/;
            $e{$k} = $v;
        }
        for my $k (@optional) {
            last unless @lines;
            next unless $lines[0] =~ /\A\Q$k\E /;
            my ($v) = shift(@lines) =~ /\A\Q$k\E ([\x21-\x7e]{1,1024})\z/ or return undef;
            return undef if $k eq 'sigstore-rekor-index' && !_decimal($v);
            $e{$k} = $v;
        }
        return undef if @lines;
    }
    return \%e;
}

# check_state($dir, $cp, $note): remembers every checkpoint verified, per
# log key, in $dir/checkpoints/<sha256 of the origin>-<key ID> ("size
# root" lines), and dies with a security error when two of the same size
# have different roots: a fork, the log showing two histories. (Offline,
# with proofs at older checkpoints, a smaller size is no rollback: only
# the Go client, which asks the log for consistency proofs, advances a
# trusted state.)
#
# Another key for an origin is another log (a new local log with the
# default origin, a key its operator replaced): its checkpoints are never
# compared with the old key's. While checkpoints of the origin under
# another key are remembered, it "could not check" (exit 2), saying what
# to do. The file kept before keys, $dir/checkpoints/<sha256 of the
# origin>, is still read, but it does not say which key signed what it
# remembers: a root it contradicts is "another log with the same origin,
# or a fork", exit 2, never 3.
sub check_state {
    my ($dir, $cp, $note) = @_;
    my $sub = File::Spec->catdir($dir, 'checkpoints');
    File::Path::make_path($sub, { mode => 0700 }) unless -d $sub;
    my $base = Digest::SHA::sha256_hex($cp->{origin});
    my $id = $cp->{log_id} // '';
    my $file = File::Spec->catfile($sub, "$base-$id");
    my $root = MIME::Base64::encode_base64($cp->{root}, '');
    my $what_to_do = sub {
        my ($f) = @_;
        "If you replaced the log on purpose (a new local log, or a key change its operator announced), move the old state aside and run again: mv $f $f.old. If not, check the policy's log line against the key the log's operator publishes";
    };
    unless (-e $file) {
        my @names;
        if (opendir(my $dh, $sub)) { @names = readdir $dh; closedir $dh }
        for my $other (sort grep { /\A\Q$base\E-[0-9a-f]{8}\z/ } @names) {
            my $f = File::Spec->catfile($sub, $other);
            my ($oid) = $other =~ /-([0-9a-f]{8})\z/;
            _could_not_check("another log with the same origin: the checkpoints of $cp->{origin} remembered here until now were signed by $cp->{origin}+$oid (kept in $f), but the policy names the key $cp->{origin}+$id. This is not a fork, and nothing was compared. " . $what_to_do->($f));
        }
    }
    my $read = sub {
        my ($f) = @_;
        open my $fh, '<', $f or return ();
        return grep { /\A\d+ \S+\z/ } map { chomp; $_ } <$fh>;
    };
    my @seen = $read->($file);
    for my $l (@seen) {
        my ($size, $r) = split / /, $l;
        next unless $size == $cp->{size};
        return if $r eq $root;
        my $evidence = File::Spec->catfile($sub, 'fork-' . time . '.checkpoint');
        if (open my $ev, '>', $evidence) { print $ev $note; close $ev }
        _security("fork: the log $cp->{origin} showed a checkpoint of size $size with root $r before, and now one with root $root (saved in $evidence); report it to the log's operators and the CPAN security team");
    }
    my $legacy = File::Spec->catfile($sub, $base);
    for my $l ($read->($legacy)) {
        my ($size, $r) = split / /, $l;
        next unless $size == $cp->{size} && $r ne $root;
        _could_not_check("another log with the same origin, or a fork: a checkpoint of $cp->{origin} of size $size with root $r was remembered before the state was kept per log key (in $legacy, which does not say which key signed it), and the log now shows root $root. " . $what_to_do->($legacy));
    }
    push @seen, "$cp->{size} $root";
    splice @seen, 0, @seen - 1000 if @seen > 1000;
    my $tmp = "$file.tmp.$$";
    open my $out, '>', $tmp or return;
    print $out map { "$_\n" } @seen;
    close $out or return;
    rename $tmp, $file;
}

# verify_file(policy => $text, proof => $bytes, file => $content, path => $cpan_path):
# everything; returns a hash describing what verified, or dies with
# {code, message}.
sub verify_file {
    my %a = @_;
    my $policy = ref $a{policy} ? $a{policy} : parse_policy($a{policy});
    my $proof = parse_proof($a{proof});
    my $cp = verify_checkpoint($policy, $proof->{checkpoint});
    check_state($a{state}, $cp, $proof->{checkpoint}) if defined $a{state};
    _not_verified('tlog-proof has no extra line; cpan-tlog proofs carry the entry there') unless defined $proof->{extra};
    # The inclusion proof before the entry is read: only an entry the log
    # recorded can contradict the file ("does not match the log", which
    # stands without asking the log); one whose inclusion does not verify
    # is bytes anyone could write.
    _not_verified("tlog-proof index $proof->{index} is outside its checkpoint of size $cp->{size}") unless $proof->{index} < $cp->{size};
    _not_verified("tlog-proof's inclusion proof does not verify")
        unless verify_inclusion($proof->{index}, $cp->{size}, _hash_leaf($proof->{extra}), $proof->{hashes}, $cp->{root});
    my $e = _parse_entry($proof->{extra}) or _not_verified('logged entry is malformed');
    _not_verified("logged entry '$e->{path}' is a $e->{kind}, not an upload") if $e->{kind} eq 'delete';
    _not_verified("the log's entry is for $e->{path}, not $a{path}") if defined $a{path} && length $a{path} && $e->{path} ne $a{path};
    my ($size, $sha) = (length $a{file}, Digest::SHA::sha256_hex($a{file}));
    _not_verified("$e->{path} does not match the log: the log recorded $e->{size} bytes with sha256 $e->{sha256}, the file has $size bytes with sha256 $sha; it is not the file CPAN published, do not install it")
        unless $e->{size} eq $size && $e->{sha256} eq $sha;
    return { %$e, index => $proof->{index}, checkpoint => $cp };
}

1;

__END__

=head1 NAME

CPAN::TLog::Verify - verify a CPAN file against the cpan-tlog transparency log, offline

=head1 SYNOPSIS

  use CPAN::TLog::Verify qw(verify_file);
  my $r = eval { verify_file(policy => $policy_text, proof => $proof_bytes,
                             file => $tarball_bytes, path => 'authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz') };
  if (my $err = $@) { die "$err->{message}\n" }   # $err->{code}: 1, 2 or 3
  print "verified at index $r->{index}\n";

=head1 DESCRIPTION

Checks, with nothing to ask at install time, that a file is the one CPAN
published: the c2sp.org/tlog-proof@v1 (which a mirror publishes under
C<tlog/proofs/>) carries the log's entry, an RFC 6962 inclusion proof and
the log's checkpoint; the checkpoint must be signed by the policy's log key
(Ed25519) and cosigned (cosignature/v1) by the policy's witness quorum; the
entry's size and SHA-256 must be the file's. Errors carry the cpantlog exit
code: 1 not verified (a signature that does not verify included: bytes
anyone can make are no evidence against the log), 2 bad input, 3 evidence
signed by a trusted key (security): a fork, see L</FILES>.

=head1 THE POLICY

The trust policy is the Go client's format, one statement a line, C<#>
starting a comment:

  log <log verifier key> [<URL>]
  witness <name> <cosignature/v1 key> [<URL>]
  group <name> any|all|<n> <member>...      # members listed once each, 1 <= n <= members
  quorum <group or witness>|none

A public key may appear on at most one witness line and on at most one
log line (C2SP tlog-policy): a second line with the same key, even under
another key name or ID, is refused with an error naming both lines.

A checkpoint is trusted when the log's signature verifies and the quorum's
cosignatures do. Every signature line under a key the policy names must
verify (a forged duplicate of a good line rejects the checkpoint, exit 1).
cpanm-tlog, carton-tlog and CPAN::Plugin::TLog read it from
C<$CPANTLOG_POLICY>, else C<~/.config/cpantlog/policy> (where the cpantlog Go
tools read it too; the old C<~/.cpantlog/policy> is still read, with a notice).

=head1 BATCHES

Pass C<parse_policy>'s result as C<policy>, as the toolchain hooks do: each
distinct checkpoint's signatures are then verified once per process (about
8 ms with CryptX), and each further file costs its hashing and inclusion
proof (about 0.14 ms).

=head1 FILES

With C<state =E<gt> DIR> (the hooks use the Go tools' place:
C<$CPANTLOG_STATE>, else C<$XDG_STATE_HOME/cpantlog>, else
C<~/.local/state/cpantlog>), every checkpoint verified is remembered per log key in
C<DIR/checkpoints/E<lt>sha256 of the originE<gt>-E<lt>key IDE<gt>>; two of
one size with different roots are a fork (exit 3), and the second is saved
beside it as evidence. A checkpoint of an origin whose checkpoints were
remembered under another key (another log with the same origin, such as a
new local log) is not compared with them: it could not be checked (exit
2), and the message says which file to move aside if the log was replaced
on purpose. The file kept before keys, C<DIR/checkpoints/E<lt>sha256 of
the originE<gt>>, is still read; it does not say which key signed what it
remembers, so a root it contradicts is exit 2, not 3.

=head1 SEE ALSO

L<cpanm-tlog>, L<carton-tlog>, L<CPAN::Plugin::TLog>, L<CPAN::TLog::Cpanm>,
C<cpantlog-verify-pl -h>.

=cut

=head1 LICENSE

This software is copyright (c) 2026 by the cpan-tlog developers.

This is free software; you can redistribute it and/or modify it under
the same terms as the Perl 5 programming language system itself.

=cut
