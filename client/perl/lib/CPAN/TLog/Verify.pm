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
use Fcntl ();
use IO::Handle ();
use Crypt::PK::Ed25519 ();
use Exporter 'import';

our $VERSION = '1.00';
our @EXPORT_OK = qw(parse_policy parse_proof verify_checkpoint verify_inclusion verify_file
    check_state advance_state sync_with_log proof_origin verify_consistency origin_dir_name
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

# A witness's verifier key (C2SP tlog-cosignature): type 0x04 and an
# Ed25519 key, or type 0x06 and a 1312-byte ML-DSA-44 key, which this
# verifier parses (for the key ID and duplicate keys) but cannot check
# signatures with: CryptX has no ML-DSA, and Debian packages no Perl
# ML-DSA. Its cosignatures are neither counted nor refused (see
# _verify_checkpoint).
use constant {
    MLDSA44_PUBLIC_KEY_SIZE => 1312,
    MLDSA44_SIGNATURE_SIZE  => 2420,
};

sub _parse_witness_vkey {
    my ($vkey) = @_;
    my ($name, $hash, $key) = $vkey =~ /\A([^+\s]+)\+([0-9a-f]{8})\+(\S+)\z/ or return undef;
    my $raw = _b64($key);
    return undef unless defined $raw && length $raw;
    if (ord(substr($raw, 0, 1)) == 0x06) {
        return undef unless length($raw) == 1 + MLDSA44_PUBLIC_KEY_SIZE;
        my $computed = substr(Digest::SHA::sha256("$name\n$raw"), 0, 4);
        return undef unless unpack('H8', $computed) eq $hash;
        return { name => $name, hash => $computed, vkey => $vkey, pub => substr($raw, 1), alg => 'ML-DSA-44' };
    }
    my $k = _parse_vkey($vkey, 0x04) or return undef;
    return { %$k, alg => 'Ed25519' };
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
            my $k = _parse_witness_vkey($f[2]) or $bad->("'$f[2]' is not a cosignature/v1 verifier key (type 0x04, Ed25519, or 0x06, ML-DSA-44)");
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

# proof_origin($bytes): the origin (first line) of the checkpoint a
# tlog-proof carries: the log whose tiles and state the proof is held to
# (sync_with_log's origin). Dies as parse_proof on a malformed proof.
sub proof_origin {
    my ($cp) = parse_proof($_[0])->{checkpoint} =~ /\A([^\n]*)\n/;
    return $cp;
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
# size, root, cosigned_by, and not_checked: the witnesses whose ML-DSA-44
# cosignature is on it but could not be checked). Dies with the Go
# client's exit codes: a quorum that only an ML-DSA-44 cosignature can
# complete is "could not check" (exit 2).
sub verify_checkpoint {
    my $r = _checkpoint(@_);
    _could_not_check($r->{needs_unchecked}) if $r->{needs_unchecked};
    return $r;
}

# _checkpoint is verify_checkpoint, except that a quorum that needs an
# ML-DSA-44 cosignature returns the checkpoint with needs_unchecked set
# (the reason) instead of dying: verify_file still checks the rest, so
# that what would be refused whatever that cosignature is (an inclusion
# proof that fails, a file that is not the entry's) is refused.
sub _checkpoint {
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
    my (%cosigned, %unchecked);
    for my $wname (sort keys %{ $policy->{witnesses} || {} }) {
        my $w = $policy->{witnesses}{$wname};
        for my $s (@{ $note->{sigs} }) {
            next unless $s->{name} eq $w->{name} && $s->{hash} eq $w->{hash};
            my $sig = $s->{sig};
            if ($w->{alg} eq 'ML-DSA-44') {
                # A signature of the wrong length cannot verify (C2SP
                # tlog-cosignature: timestamp || 2420 bytes); one of the
                # right length is neither counted nor refused.
                _not_verified("checkpoint carries a cosignature line by witness ${wname}'s key that does not verify (an ML-DSA-44 cosignature is 2428 bytes, this one " . length($sig) . '), so the note is rejected whole')
                    unless length($sig) == 8 + MLDSA44_SIGNATURE_SIZE;
                $unchecked{$wname} = 1;
                next;
            }
            my $ok = length($sig) == 72 && do {
                my $ts = unpack('Q>', substr($sig, 0, 8));
                $w->{key}->verify_message(substr($sig, 8), "cosignature/v1\ntime $ts\n" . $note->{text});
            };
            _not_verified("checkpoint carries a cosignature line by witness ${wname}'s key that does not verify, so the note is rejected whole") unless $ok;
            $cosigned{$wname} = 1;
        }
    }
    my $needs;
    unless (_satisfied($policy, $policy->{quorum}, \%cosigned)) {
        _not_verified(sprintf("checkpoint of size %s is not cosigned by the policy's quorum '%s' (cosigned by: %s)",
            $size, $policy->{quorum}, join(', ', sort keys %cosigned) || 'none'))
            unless %unchecked && _satisfied($policy, $policy->{quorum}, { %cosigned, %unchecked });
        # Met if the ML-DSA-44 cosignatures verify, not without them:
        # neither passed nor refused.
        $needs = sprintf("the policy's quorum '%s' needs the ML-DSA-44 cosignature of %s, which this verifier cannot check (CryptX has no ML-DSA); the log's signature%s verified. Check it with the Go client, which checks ML-DSA-44: cpantlog verify --proof PROOF --policy POLICY FILE",
            $policy->{quorum}, join(', ', map { "witness $_" } sort keys %unchecked),
            %cosigned ? ' and the cosignatures of ' . join(', ', sort keys %cosigned) : '');
    }
    return { origin => $origin, size => $size, root => $root, cosigned_by => [ sort keys %cosigned ],
        not_checked => [ sort keys %unchecked ], ($needs ? (needs_unchecked => $needs) : ()),
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
        my @optional = qw(sigstore-source-repo sigstore-build-config sigstore-rekor-index sigstore-rekor-log);
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
            # The Rekor log's key ID, lower-case hex, only with an index.
            return undef if $k eq 'sigstore-rekor-log'
                && ($v !~ /\A(?:[0-9a-f]{2}){1,64}\z/ || !defined $e{'sigstore-rekor-index'});
            $e{$k} = $v;
        }
        return undef if @lines;
    }
    return \%e;
}

# ---- trusted state, shared with the Go client -------------------------
#
# The newest checkpoint trusted for a log key, kept whole (the signed
# note), where and as the Go client keeps it (client/state.go):
# DIR/<origin_dir_name(origin)>/key-<key ID>/checkpoint, replaced
# atomically (temporary file, fsync, rename, fsync of the directory) under
# flock(DIR/<origin>/lock), which the Go client takes too. A checkpoint
# one client trusted is trusted by the other, and neither goes back:
# the trusted checkpoint is replaced only by a larger one proven
# consistent with it (RFC 6962 consistency, from the log's tiles).
# Conflicts are saved in DIR/<origin>/evidence/<time>/.

# origin_dir_name($origin): the directory of an origin in the state
# directory, one path element for every origin, as Go's
# client.OriginDirName (testdata/vectors-statepath.txt holds both to it).
sub origin_dir_name {
    my ($origin) = @_;
    utf8::encode($origin) if utf8::is_utf8($origin);
    (my $name = $origin) =~ s/([^A-Za-z0-9\-_.~\$&+:=\@])/sprintf('%%%02X', ord $1)/ge;
    return '%' if $name eq '';
    return '%2E' x length($name) if $name eq '.' || $name eq '..';
    return '%sha256-' . Digest::SHA::sha256_hex($origin) if length($name) > 200;
    return $name;
}

# _signed_by($raw, $vkey): whether the note carries a signature by the
# log key $vkey that verifies.
sub _signed_by {
    my ($raw, $vkey) = @_;
    my $k = _parse_vkey($vkey, 1) or return 0;
    my $note = _open_note($raw) or return 0;
    for my $s (@{ $note->{sigs} }) {
        return 1 if $s->{name} eq $k->{name} && $s->{hash} eq $k->{hash} && $k->{key}->verify_message($s->{sig}, $note->{text});
    }
    return 0;
}

# _size_root($raw): the size and root of a checkpoint note, or ().
sub _size_root {
    my ($raw) = @_;
    my $j = index($raw, "\n\n");
    return () if $j < 0;
    my (undef, $size, $root) = split /\n/, substr($raw, 0, $j);
    return () unless _decimal($size);
    $root = _b64($root // '');
    return () unless defined $root && length($root) == 32;
    return ($size, $root);
}

sub _slurp_state {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return undef;
    local $/;
    my $b = <$fh>;
    return $b // '';
}

sub _another_log {
    my ($cp, $trusted, $path) = @_;
    my @by;
    if (my $note = _open_note($trusted)) {
        push @by, map { sprintf('%s+%s', $_->{name}, unpack('H8', $_->{hash})) } grep { $_->{name} eq $cp->{origin} } @{ $note->{sigs} };
    }
    _could_not_check("another log with the same origin: the checkpoints of $cp->{origin} trusted on this machine until now were signed by "
        . (join(', ', @by) || 'none') . " (kept in $path), but the policy names the key $cp->{origin}+$cp->{log_id}. "
        . "This is not a rollback, and nothing was compared or verified. If you replaced the log on purpose (a new local log, or a key change its operator announced), move the old state aside and run again: mv $path $path.old. "
        . "If not, check the policy's log line against the key the log's operator publishes");
}

# _state_of($dir, $cp): where $cp's log keeps its state, and the
# checkpoint trusted for its key (undef when none), as Go's trustedFor
# reads it: its key's file; else the file kept before keys, if this key
# signed it; a state under another key of the origin is another log.
sub _state_of {
    my ($dir, $cp) = @_;
    my $logdir = File::Spec->catdir($dir, origin_dir_name($cp->{origin}));
    my $keydir = File::Spec->catdir($logdir, "key-$cp->{log_id}");
    my %s = (logdir => $logdir, keydir => $keydir, file => File::Spec->catfile($keydir, 'checkpoint'));
    for my $f ($s{file}, File::Spec->catfile($logdir, 'checkpoint')) {
        my $raw = _slurp_state($f);
        next unless defined $raw;
        _another_log($cp, $raw, $f) unless _signed_by($raw, $cp->{log_key});
        my ($size, $root) = _size_root($raw);
        _could_not_check("the trusted state for $cp->{origin} is damaged ($f is not a checkpoint); delete it only if you know why") unless defined $size;
        @s{qw(raw size root from)} = ($raw, $size, $root, $f);
        return \%s;
    }
    if (opendir my $dh, $logdir) {
        for my $other (sort grep { /\Akey-[0-9a-f]{8}\z/ } readdir $dh) {
            my $f = File::Spec->catfile($logdir, $other, 'checkpoint');
            my $raw = _slurp_state($f);
            _another_log($cp, $raw, File::Spec->catdir($logdir, $other)) if defined $raw;
        }
    }
    return \%s;
}

sub _state_lock {
    my ($logdir) = @_;
    eval { File::Path::make_path($logdir, { mode => 0700 }) } unless -d $logdir;
    open my $fh, '>>', File::Spec->catfile($logdir, 'lock') or _could_not_check("cannot keep the trusted state in $logdir: $!");
    flock $fh, Fcntl::LOCK_EX() or _could_not_check("cannot lock the trusted state in $logdir: $!");
    return $fh;
}

# _save_state($s, $raw): the trusted checkpoint, replaced atomically and
# durably (as Go's atomicfile.Write).
sub _save_state {
    my ($s, $raw) = @_;
    my $dir = $s->{keydir};
    eval { File::Path::make_path($dir, { mode => 0700 }) } unless -d $dir;
    my $tmp = File::Spec->catfile($dir, sprintf('.tmp-checkpoint-perl-%d-%d', $$, int rand 1e9));
    my $fh;
    my $ok = sysopen($fh, $tmp, Fcntl::O_WRONLY() | Fcntl::O_CREAT() | Fcntl::O_EXCL(), 0600)
        && binmode($fh) && print({$fh} $raw) && $fh->flush && $fh->sync && close($fh)
        && rename($tmp, $s->{file});
    unless ($ok) {
        my $err = $!;
        unlink $tmp;
        _could_not_check("cannot keep the trusted checkpoint in $s->{file}: $err");
    }
    if (sysopen my $d, $dir, Fcntl::O_RDONLY()) { $d->sync; close $d }
    # The file kept before keys: kept under the key now, read no more.
    unlink File::Spec->catfile($s->{logdir}, 'checkpoint') if $s->{from} && $s->{from} ne $s->{file};
    @$s{qw(raw from)} = ($raw, $s->{file});
    @$s{qw(size root)} = _size_root($raw);
}

# _conflict: the evidence saved, and a security error (exit 3).
sub _conflict {
    my ($s, $offered, $reason) = @_;
    my @t = gmtime;
    my $ev = File::Spec->catdir($s->{logdir}, 'evidence', sprintf('%04d%02d%02dT%02d%02d%02dZ-perl-%d-%d', $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0], $$, int rand 1e6));
    my $saved = eval { File::Path::make_path($ev, { mode => 0700 }); 1 };
    for ([ 'trusted.checkpoint', $s->{raw} ], [ 'offered.checkpoint', $offered ], [ 'reason.txt', "$reason\n" ]) {
        open(my $fh, '>:raw', File::Spec->catfile($ev, $_->[0])) or do { $saved = 0; next };
        print $fh $_->[1];
        close $fh or $saved = 0;
    }
    _security("$reason\n--- checkpoint trusted until now ---\n$s->{raw}--- checkpoint offered now ---\n$offered"
        . ($saved ? "evidence saved in $ev; report it to the log's operators and the CPAN security team" : "report it to the log's operators and the CPAN security team"));
}

# The old Perl records (DIR/checkpoints/<sha256 of the origin>-<key ID>,
# "size root" lines, and DIR/checkpoints/<sha256 of the origin> before
# keys): checked against the first checkpoint of their log seen by this
# version (a root at its size; with the log's URL, every record of this
# key of another size proven consistent with it from the log's tiles),
# then moved aside into the log's directory, read no more. Offline, keyed
# records of other sizes stay until a run that can ask the log.
sub _migrate_old_records {
    my ($dir, $s, $cp, %o) = @_;
    my $base = Digest::SHA::sha256_hex($cp->{origin});
    my $root = MIME::Base64::encode_base64($cp->{root}, '');
    for my $old ([ "$base-$cp->{log_id}", 1 ], [ $base, 0 ]) {
        my ($name, $keyed) = @$old;
        my $f = File::Spec->catfile($dir, 'checkpoints', $name);
        my $text = _slurp_state($f);
        next unless defined $text;
        my %other;    # this key's checkpoints of other sizes
        for my $l (split /\n/, $text) {
            my ($size, $r) = $l =~ /\A(\d+) (\S+)\z/ or next;
            $other{"$size $r"} = [ $size, $r ] if $keyed && _decimal($size) && $size != $cp->{size} && $size > 0;
            next unless $size == $cp->{size} && $r ne $root;
            _security("fork: the log $cp->{origin} showed a checkpoint of size $size with root $r before (remembered in $f), and now one with root $root; report it to the log's operators and the CPAN security team") if $keyed;
            _could_not_check("another log with the same origin, or a fork: a checkpoint of $cp->{origin} of size $size with root $r was remembered before the state was kept per log key (in $f, which does not say which key signed it), and the log now shows root $root. If you replaced the log on purpose, move it aside and run again: mv $f $f.old");
        }
        if (%other) {
            # Each must be a prefix of the log's tree, or the other way
            # round; only the log's tiles can show it: offline, the
            # records stay for a run that can ask the log.
            next unless defined $o{log_url};
            for my $rec (sort { $a->[0] <=> $b->[0] } values %other) {
                my $r = _b64($rec->[1]);
                next unless defined $r && length($r) == 32;
                my ($small, $large) = $rec->[0] < $cp->{size} ? ([ $rec->[0], $r ], [ $cp->{size}, $cp->{root} ]) : ([ $cp->{size}, $cp->{root} ], [ $rec->[0], $r ]);
                my $proof = consistency_proof_from_tiles($o{log_url}, $small->[0], $large->[0]);
                _security("fork: the log $cp->{origin} showed a checkpoint of size $rec->[0] with root $rec->[1] before (remembered in $f), which is not consistent with its checkpoint of size $cp->{size} with root $root now; report it to the log's operators and the CPAN security team")
                    unless verify_consistency($small->[0], $large->[0], $proof, $small->[1], $large->[1]);
            }
        }
        eval { File::Path::make_path($s->{logdir}, { mode => 0700 }) };
        rename $f, File::Spec->catfile($s->{logdir}, "perl-records-$name.old");
    }
}

# check_state($dir, $cp, $note, log_url => URL): holds the checkpoint a
# proof carries to the trusted state. The same size with another root is
# a fork (exit 3); a checkpoint of another key of the origin is another
# log (exit 2). With no state yet, it becomes the trusted checkpoint.
# With log_url (the log answered sync_with_log; its tiles are read): a
# larger checkpoint replaces the trusted one once proven consistent with
# it, and a smaller one must be consistent with it; either not consistent
# is a fork (exit 3), tiles that cannot be read could not check (exit 2).
# Without log_url (offline), a smaller or larger one is held to nothing
# more, as Go's State.Check: only the log's tiles could show it
# consistent, and proofs made earlier carry older checkpoints.
sub check_state {
    my ($dir, $cp, $note, %o) = @_;
    my $s = _state_of($dir, $cp);
    my $lock = _state_lock($s->{logdir});
    $s = _state_of($dir, $cp);    # again, under the lock
    _migrate_old_records($dir, $s, $cp, %o);
    return _save_state($s, $note) unless defined $s->{raw};
    if ($cp->{size} == $s->{size}) {
        return if $cp->{root} eq $s->{root};
        _conflict($s, $note, "fork: two checkpoints of size $cp->{size} with different roots");
    }
    return unless defined $o{log_url};
    my ($small, $large) = $cp->{size} < $s->{size} ? ([ $cp->{size}, $cp->{root} ], [ $s->{size}, $s->{root} ]) : ([ $s->{size}, $s->{root} ], [ $cp->{size}, $cp->{root} ]);
    my $proof = consistency_proof_from_tiles($o{log_url}, $small->[0], $large->[0]);
    unless (verify_consistency($small->[0], $large->[0], $proof, $small->[1], $large->[1])) {
        _conflict($s, $note, "fork: the checkpoint of size $cp->{size} is not consistent with the trusted one of size $s->{size}");
    }
    _save_state($s, $note) if $cp->{size} > $s->{size};
    return;
}

# advance_state($dir, $cp, $note, log_url => URL): $cp is the log's
# latest checkpoint (GET /checkpoint): smaller than the trusted one is a
# rollback, the same size with another root or larger and not consistent
# is a fork (exit 3); consistent, it becomes the trusted checkpoint. The
# tiles unreachable: could not check (exit 2).
sub advance_state {
    my ($dir, $cp, $note, %o) = @_;
    my $s = _state_of($dir, $cp);
    my $lock = _state_lock($s->{logdir});
    $s = _state_of($dir, $cp);
    _migrate_old_records($dir, $s, $cp, %o);
    return _save_state($s, $note) unless defined $s->{raw};
    _conflict($s, $note, "rollback: the log now shows a tree of size $cp->{size}, but a checkpoint of size $s->{size} was trusted before") if $cp->{size} < $s->{size};
    if ($cp->{size} == $s->{size}) {
        return if $cp->{root} eq $s->{root};
        _conflict($s, $note, "fork: two checkpoints of size $cp->{size} with different roots");
    }
    if ($s->{size} > 0) {
        my $proof = consistency_proof_from_tiles($o{log_url}, $s->{size}, $cp->{size});
        _conflict($s, $note, "fork: the checkpoint of size $cp->{size} is not consistent with the trusted one of size $s->{size}")
            unless verify_consistency($s->{size}, $cp->{size}, $proof, $s->{root}, $cp->{root});
    }
    _save_state($s, $note);
    return;
}

# verify_consistency($size1, $size2, \@proof, $root1, $root2): RFC 6962
# consistency, as transparency-dev/merkle's proof.VerifyConsistency.
sub verify_consistency {
    my ($size1, $size2, $proof, $root1, $root2) = @_;
    return 0 if $size2 < $size1;
    return (!@$proof && $root1 eq $root2) ? 1 : 0 if $size1 == $size2;
    return @$proof ? 0 : 1 if $size1 == 0;
    return 0 unless @$proof;
    my $index = $size1 - 1;
    my $x = $index ^ ($size2 - 1);
    my $inner = 0;
    while ($x) { $inner++; $x >>= 1 }
    my $border = 0;
    my $y = $index >> $inner;
    while ($y) { $border += $y & 1; $y >>= 1 }
    my $shift = 0;
    $shift++ while !(($size1 >> $shift) & 1);
    $inner -= $shift;
    my ($seed, $start) = ($proof->[0], 1);
    ($seed, $start) = ($root1, 0) if $size1 == (1 << $shift);
    return 0 unless @$proof == $start + $inner + $border;
    my @p = @{$proof}[ $start .. $#$proof ];
    my $mask = $index >> $shift;
    my ($h1, $h2) = ($seed, $seed);
    for my $i (0 .. $inner - 1) {
        if (($mask >> $i) & 1) {
            $h1 = _hash_children($p[$i], $h1);
            $h2 = _hash_children($p[$i], $h2);
        } else {
            $h2 = _hash_children($h2, $p[$i]);
        }
    }
    for my $h (@p[ $inner .. $#p ]) {
        $h1 = _hash_children($h, $h1);
        $h2 = _hash_children($h, $h2);
    }
    return ($h1 eq $root1 && $h2 eq $root2) ? 1 : 0;
}

# consistency_proof($size1, $size2, $hash): the RFC 6962 consistency proof
# (PROOF(m, D[n])) from $hash->($lo, $hi), the hash of a complete subtree
# of leaves [$lo, $hi).
sub consistency_proof {
    my ($m, $n, $hash) = @_;
    my $range;
    $range = sub {
        my ($lo, $hi) = @_;
        my $k = 1;
        $k <<= 1 while $k < $hi - $lo;
        return $hash->($lo, $hi) if $k == $hi - $lo && $lo % $k == 0;
        $k >>= 1;
        return _hash_children($range->($lo, $lo + $k), $range->($lo + $k, $hi));
    };
    my $sub;
    $sub = sub {
        my ($m, $lo, $hi, $whole) = @_;
        return $whole ? () : ($range->($lo, $hi)) if $m == $hi - $lo;
        my $k = 1;
        $k <<= 1 while $k * 2 < $hi - $lo;
        return ($sub->($m, $lo, $lo + $k, $whole), $range->($lo + $k, $hi)) if $m <= $k;
        return ($sub->($m - $k, $lo + $k, $hi, 0), $range->($lo, $lo + $k));
    };
    my @p = $m > 0 && $m < $n ? $sub->($m, 0, $n, 1) : ();
    undef $range;
    undef $sub;
    return \@p;
}

# tile_path($level, $index, $width): a C2SP tlog-tiles path.
sub tile_path {
    my ($level, $n, $width) = @_;
    my @g;
    do { unshift @g, sprintf('%03d', $n % 1000); $n = int($n / 1000) } while $n > 0;
    $g[$_] = "x$g[$_]" for 0 .. $#g - 1;
    return "tile/$level/" . join('/', @g) . ($width < 256 ? ".p/$width" : '');
}

use constant MAX_TILE_FETCHES => 200;
my %tile_cache;    # tiles read in this process (a tile of a width never changes)

# consistency_proof_from_tiles($url, $size1, $size2): the consistency
# proof, from the hashes in the log's tiles (read for a tree of $size2:
# a partial tile, else the full one that replaced it). What the tiles hold
# is not trusted: verify_consistency decides.
sub consistency_proof_from_tiles {
    my ($url, $m, $n) = @_;
    $url =~ s{/+\z}{};
    require HTTP::Tiny;
    my $http = HTTP::Tiny->new(timeout => 30, max_redirect => 0, max_size => 256 * 32 + 1, agent => "CPAN-TLog-Verify/$VERSION");
    my $fetches = 0;
    my $tile = sub {
        my ($level, $t, $width) = @_;
        my $key = "$url " . tile_path($level, $t, $width);
        %tile_cache = () if keys %tile_cache > 1000;
        return $tile_cache{$key} //= do {
            _could_not_check('too many tiles to read') if ++$fetches > MAX_TILE_FETCHES;
            my $body;
            for my $w ($width < 256 ? ($width, 256) : (256)) {
                my $res = $http->get("$url/" . tile_path($level, $t, $w));
                if ($res->{status} == 200) { $body = $res->{content}; last }
                next if $res->{status} == 404;
                _could_not_check("the log's tile " . tile_path($level, $t, $w) . ($res->{status} == 599 ? " could not be read: $res->{content}" : " answered $res->{status}"));
            }
            _could_not_check('the log has no tile ' . tile_path($level, $t, $width)) unless defined $body;
            _could_not_check('the log served a tile ' . tile_path($level, $t, $width) . ' of ' . length($body) . ' bytes') if length($body) < $width * 32 || length($body) % 32;
            substr($body, 0, $width * 32);
        };
    };
    my $hash = sub {
        my ($lo, $hi) = @_;
        my $count = $hi - $lo;
        my $h = 0;
        $h++ while (1 << $h) < $count;
        my $level = int($h / 8);
        my $r = $h - 8 * $level;
        my $first = $lo >> (8 * $level);    # at the tile level
        my $t = $first >> 8;
        my $width = ($n >> (8 * $level)) - $t * 256;
        $width = 256 if $width > 256;
        my $body = $tile->($level, $t, $width);
        my @hs = map { substr($body, (($first & 255) + $_) * 32, 32) } 0 .. (1 << $r) - 1;
        while (@hs > 1) { @hs = map { _hash_children($hs[2 * $_], $hs[2 * $_ + 1]) } 0 .. @hs / 2 - 1 }
        return $hs[0];
    };
    return consistency_proof($m, $n, $hash);
}

# sync_with_log($policy, $dir, origin => ORIGIN): asks the policy's log
# for its latest checkpoint (GET /checkpoint), verifies it against the
# policy and advances the trusted state in $dir to it (advance_state: a
# rollback or a fork is a security error, exit 3). The log is the one of
# origin ORIGIN (that of the proof to verify: proof_origin), whose line
# in the policy gives its one key and its URL; without origin, the first
# log with a URL. Returns the log's URL, to hand to verify_file as
# log_url for a proof of that log only; or (undef, why) when the policy
# names no such log, or no URL for it, or the log could not be asked: the
# proofs are then held to the trusted state offline.
sub sync_with_log {
    my ($policy, $dir, %o) = @_;
    my $log;
    if (defined $o{origin}) {
        ($log) = grep { $_->{name} eq $o{origin} } @{ $policy->{logs} || [] };
        return (undef, "the policy names no log '$o{origin}'") unless $log;
        return (undef, "the policy gives no URL for log '$o{origin}'") unless defined $log->{url};
    } else {
        ($log) = grep { defined $_->{url} } @{ $policy->{logs} || [] };
        return (undef, 'the policy names no log URL') unless $log;
    }
    (my $url = $log->{url}) =~ s{/+\z}{};
    require HTTP::Tiny;
    my $http = HTTP::Tiny->new(timeout => $o{timeout} // 30, max_redirect => 0, max_size => MAX_CHECKPOINT_SIZE, agent => "CPAN-TLog-Verify/$VERSION");
    my $res = $http->get("$url/checkpoint");
    return (undef, $res->{status} == 599 ? "the log at $url could not be asked: " . ($res->{content} =~ s/\s+\z//r) : "the log at $url answered $res->{status}")
        unless $res->{status} == 200;
    my $cp = verify_checkpoint($policy, $res->{content});
    _not_verified("the log at $url serves checkpoints of '$cp->{origin}', not '$log->{name}'") unless $cp->{origin} eq $log->{name};
    advance_state($dir, $cp, $res->{content}, log_url => $url);
    return ($url);
}

# verify_file(policy => $text, proof => $bytes, file => $content, path => $cpan_path):
# everything; returns a hash describing what verified, or dies with
# {code, message}.
sub verify_file {
    my %a = @_;
    my $policy = ref $a{policy} ? $a{policy} : parse_policy($a{policy});
    my $proof = parse_proof($a{proof});
    my $cp = _checkpoint($policy, $proof->{checkpoint});
    # A checkpoint whose quorum needs an ML-DSA-44 cosignature is not
    # trusted: it is not remembered, and the answer is at best "could not
    # check"; but what fails whatever that cosignature is still refuses.
    my $unchecked = $cp->{needs_unchecked};
    check_state($a{state}, $cp, $proof->{checkpoint}, log_url => $a{log_url}) if defined $a{state} && !$unchecked;
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
    unless ($e->{size} eq $size && $e->{sha256} eq $sha) {
        # Without the quorum, the entry is not known to be the log's.
        _not_verified("$e->{path} does not match the entry in this proof ($e->{size} bytes with sha256 $e->{sha256}; the file has $size bytes with sha256 $sha), whose checkpoint's quorum could not be checked: $unchecked") if $unchecked;
        _not_verified("$e->{path} does not match the log: the log recorded $e->{size} bytes with sha256 $e->{sha256}, the file has $size bytes with sha256 $sha; it is not the file CPAN published, do not install it");
    }
    _could_not_check($unchecked) if $unchecked;
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

A witness key is an Ed25519 key (type 0x04) or an ML-DSA-44 key (type
0x06), as C2SP tlog-cosignature defines them. This module cannot check
ML-DSA-44 signatures (CryptX has no ML-DSA): such a cosignature is neither
counted nor refused. A quorum met without it verifies (the result's
C<not_checked> lists it); a quorum that needs it could not be checked (exit
2, naming C<cpantlog verify>, the Go client, which checks it), unless
something that fails whatever it is refuses the file first.

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

With C<state =E<gt> DIR> (the hooks and C<cpantlog-verify-pl> use the Go
tools' place: C<$CPANTLOG_STATE>, else C<$XDG_STATE_HOME/cpantlog>, else
C<~/.local/state/cpantlog>), the newest checkpoint trusted for a log key
is kept whole, where and as the Go client keeps it:
C<DIR/E<lt>originE<gt>/key-E<lt>key IDE<gt>/checkpoint>, the origin
escaped to one path element by C<origin_dir_name> (as Go's
C<client.OriginDirName>: C<url.PathEscape>, C<.> and C<..> spelled
C<%2E>, a name over 200 bytes as C<%sha256-E<lt>hexE<gt>>). It is
replaced atomically (temporary file, fsync, rename) under
C<flock(DIR/E<lt>originE<gt>/lock)>, which the Go client takes too, and
only by a larger checkpoint proven consistent with it: a checkpoint one
client trusted holds for the other.

C<verify_file> holds the proof's checkpoint to it: the same size with
another root is a fork (exit 3; both checkpoints are saved in
C<DIR/E<lt>originE<gt>/evidence/>); with no state yet, the checkpoint
becomes the trusted one. With C<log_url> (which C<sync_with_log> returns
once it has advanced the state to the log's latest checkpoint: smaller
than the trusted one is a rollback, exit 3), a smaller or larger
checkpoint must be consistent with the trusted one (RFC 6962, from the
log's tiles; C<verify_consistency>), and a larger one replaces it. The
log synced and asked for tiles must be the one the proof's checkpoint
names: C<sync_with_log($policy, $dir, origin =E<gt> proof_origin($proof))>
(a policy carries two logs across a log-key rotation; without C<origin>,
the first log with a URL). With the log out of reach, only the fork at the trusted size can be seen, as
with C<cpantlog verify --proof>.

A checkpoint of an origin trusted under another key (another log with
the same origin, such as a new local log) is not compared with it: it
could not be checked (exit 2), and the message says what to move aside
if the log was replaced on purpose. The records of earlier versions,
C<DIR/checkpoints/E<lt>sha256 of the originE<gt>-E<lt>key IDE<gt>>
(C<size root> lines, no signature), are checked once against the first
checkpoint of their log (a root they contradict at its size: exit 3; the
file kept before keys, which does not say which key signed it: exit 2;
with the log reachable, each record of another size must be consistent
with the log's tree, from its tiles, or it is a fork, exit 3) and then
moved aside into the origin's directory; offline, records of other sizes
stay until the log can be asked.

=head1 SEE ALSO

L<cpanm-tlog>, L<carton-tlog>, L<CPAN::Plugin::TLog>, L<CPAN::TLog::Cpanm>,
C<cpantlog-verify-pl -h>.

=cut

=head1 LICENSE

This software is copyright (c) 2026 by the cpan-tlog developers.

This is free software; you can redistribute it and/or modify it under
the same terms as the Perl 5 programming language system itself.

=cut
