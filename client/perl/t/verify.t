use strict;
use warnings;
use Test::More;
use File::Spec;
use FindBin ();
use lib "$FindBin::Bin/../lib";
use CPAN::TLog::Verify qw(parse_policy parse_proof verify_inclusion verify_file);
use Digest::SHA ();
use MIME::Base64 ();
use Time::HiRes ();

# The shared vectors live in the repository's testdata/vectors (a Go test
# writes them from a real log with real witnesses); 'make dist' copies them
# into t/vectors, so they travel with the distribution. Each has the exit
# code every verifier must give.
my $vectors = -d "$FindBin::Bin/vectors" ? "$FindBin::Bin/vectors" : File::Spec->catdir($FindBin::Bin, qw(.. .. .. testdata vectors));
ok(-d $vectors, "the shared vectors are here ($vectors)") or diag("build the distribution with 'make dist' in the repository's client/perl");

sub slurp {
    my ($name) = @_;
    open my $fh, '<:raw', $name or die "$name: $!";
    local $/;
    my $b = <$fh>;
    return $b;
}

# vector_file: the file a vector checks: its own 'file', or the file its
# 'source' names, relative to the directory above the vectors: a sample
# tarball of testdata/ in the repository; in the distribution, a file of
# t/vector-files/, where copy-vectors.pl stores each content once.
sub vector_file {
    my ($dir) = @_;
    return "$dir/file" if -e "$dir/file";
    return File::Spec->catfile($vectors, '..', slurp("$dir/source") =~ /(\S+)/);
}

# mirror_code plays a "mirror" vector as cpanm-tlog meets it: the mirror
# serves the file and the vector's proof (if any) beside it, and no log can
# be asked.
sub mirror_code {
    my ($dir, $path, $file) = @_;
    require CPAN::TLog::Cpanm;
    require File::Temp;
    require File::Path;
    require File::Basename;
    my $root = File::Temp::tempdir(CLEANUP => 1);
    local $ENV{CPANTLOG_STATE} = File::Temp::tempdir(CLEANUP => 1);
    my $bytes = slurp($file);
    if (-e "$dir/proof") {
        my $dst = "$root/" . CPAN::TLog::Cpanm::proof_path($path, Digest::SHA::sha256_hex($bytes));
        File::Path::make_path(File::Basename::dirname($dst));
        open my $fh, '>:raw', $dst or die $!;
        print $fh slurp("$dir/proof");
        close $fh;
    }
    CPAN::TLog::Cpanm::use_policy(slurp("$dir/policy"));
    my ($code) = CPAN::TLog::Cpanm::verify_bytes("file://$root", $path, $bytes);
    return $code;
}

sub code_of {
    my (%a) = @_;
    my $r = eval { verify_file(%a) };
    return 0 if $r;
    return ref $@ ? $@->{code} : 99;
}

if (-d $vectors) {
    opendir my $dh, $vectors or die $!;
    my @names = sort grep { !/^\./ } readdir $dh;
    cmp_ok(scalar @names, '>=', 10, 'shared vectors present');
    for my $name (@names) {
        my $dir = "$vectors/$name";
        my ($want) = slurp("$dir/want") =~ /(\d+)/;
        # This verifier cannot check ML-DSA-44 (CryptX has no ML-DSA):
        # where the verdict turns on it, the vector says what to give.
        ($want) = slurp("$dir/want-without-mldsa") =~ /(\d+)/ if -e "$dir/want-without-mldsa";
        my ($path) = slurp("$dir/path") =~ /(\S+)/;
        my $file = vector_file($dir);
        if (-e "$dir/mode" && slurp("$dir/mode") =~ /\Amirror/) {
            is(mirror_code($dir, $path, $file), $want, "vector $name (a mirror's proof, no log): exit $want");
            next;
        }
        is(code_of(policy => slurp("$dir/policy"), proof => slurp("$dir/proof"), file => slurp($file), path => $path),
            $want, "vector $name: exit $want");
    }
    # Speed: one full verification (policy, proof, signatures, inclusion,
    # hashing a 35 KB tarball), best of a few rounds.
    my $dir = "$vectors/valid-upload";
    my %args = (policy => slurp("$dir/policy"), proof => slurp("$dir/proof"),
        file => slurp(vector_file($dir)), path => 'authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz');
    my $n = 200;
    my $t0 = Time::HiRes::time();
    for (1 .. $n) { CPAN::TLog::Verify::forget_checkpoints(); verify_file(%args) }
    my $ms = (Time::HiRes::time() - $t0) * 1000 / $n;
    diag(sprintf 'verify_file: %.2f ms per proof (%d runs)', $ms, $n);
    ok($ms > 0, 'timed');

    # Batch: with the policy parsed once, each distinct checkpoint's
    # signatures are verified once; a hundred distributions whose proofs
    # share a checkpoint cost the hashing and the inclusion proof each.
    my $policy = parse_policy(slurp("$dir/policy"));
    my %batch = (%args, policy => $policy);
    CPAN::TLog::Verify::forget_checkpoints();
    my $t1 = Time::HiRes::time();
    verify_file(%batch);
    my $first = (Time::HiRes::time() - $t1) * 1000;
    $t1 = Time::HiRes::time();
    verify_file(%batch) for 1 .. 100;
    my $each = (Time::HiRes::time() - $t1) * 1000 / 100;
    diag(sprintf 'batch: the first distribution %.2f ms, each of the next 100 %.3f ms', $first, $each);
    cmp_ok($each, '<', $first, 'a checkpoint already verified in the batch is not verified again');
}

# Malformed input is exit 2, before anything else.
for my $bad ('', "c2sp.org/tlog-proof\@v1\n", "c2sp.org/tlog-proof\@v2\nindex 0\n\nx\n1\nAA==\n\n\xe2\x80\x94 a b\n",
    "c2sp.org/tlog-proof\@v1\nindex 01\n\no\n1\nAAAA\n\n\xe2\x80\x94 a AAAA\n",
    "c2sp.org/tlog-proof\@v1\nindex 0\nnot-base64\n\no\n1\nAAAA\n\n\xe2\x80\x94 a AAAA\n",
    "c2sp.org/tlog-proof\@v1\nindex 0\n\no\n1\nAAAA\n\n- a AAAA\n") {
    my $r = eval { parse_proof($bad) };
    is(ref $@ ? $@->{code} : 'ok', 2, 'malformed proof: ' . substr($bad =~ s/\n/\\n/gr, 0, 40));
}
for my $bad ('', "quorum none\n", "log nope\nquorum none\n", "log a+00000000+AAAA\nquorum none\n") {
    eval { parse_policy($bad) };
    is(ref $@ ? $@->{code} : 'ok', 2, 'malformed policy: ' . ($bad =~ s/\n/\\n/gr));
}

# C2SP tlog-policy: one witness line, and one log line, per public key,
# even under another key name and ID; the error names both lines (the Go
# parser's table: TestParsePolicy).
{
    require Crypt::PK::Ed25519;
    my $vkey = sub {
        my ($name, $type, $pub) = @_;
        my $id = substr(Digest::SHA::sha256("$name\n" . chr($type) . $pub), 0, 4);
        return "$name+" . unpack('H8', $id) . '+' . MIME::Base64::encode_base64(chr($type) . $pub, '');
    };
    my ($lpub, $wpub, $w2pub) = map { Crypt::PK::Ed25519->new->generate_key->export_key_raw('public') } 1 .. 3;
    my $log = 'log ' . $vkey->('localhost/cpan-tlog', 1, $lpub) . "\n";
    my $w1 = 'witness w1 ' . $vkey->('w1.example', 4, $wpub) . " http://x\n";
    for my $c (
        [ 'witness key twice', $log . $w1 . 'witness w1b ' . $vkey->('w1.example', 4, $wpub) . " http://y\ngroup g 2 w1 w1b\nquorum g\n",
          qr/policy line 3: witness 'w1b' has the same public key as witness 'w1' on line 2/ ],
        [ 'witness key twice, comment between', $log . $w1 . "# x\nwitness b " . $vkey->('w1.example', 4, $wpub) . "\nquorum w1\n",
          qr/policy line 4: witness 'b' has the same public key as witness 'w1' on line 2/ ],
        [ 'witness key twice, other name and ID', $log . $w1 . 'witness w1b ' . $vkey->('elsewhere.example', 4, $wpub) . "\ngroup g 2 w1 w1b\nquorum g\n",
          qr/policy line 3: witness 'w1b' has the same public key as witness 'w1' on line 2/ ],
        [ 'witness named none', $log . 'witness none ' . $vkey->('w1.example', 4, $wpub) . "\nquorum none\n",
          qr/policy line 2: 'none' is a word of the policy format/ ],
        [ 'group named all', $log . $w1 . "group all any w1\nquorum all\n", qr/policy line 3: 'all' is a word of the policy format/ ],
        [ 'log key twice, other origin', $log . 'log ' . $vkey->('other.example/log', 1, $lpub) . "\nquorum none\n",
          qr/policy line 2: log 'other.example\/log' has the same public key as log 'localhost\/cpan-tlog' on line 1/ ],
    ) {
        eval { parse_policy($c->[1]) };
        is(ref $@ ? $@->{code} : 'ok', 2, "$c->[0]: refused (exit 2)");
        like(ref $@ ? $@->{message} : "$@", $c->[2], "$c->[0]: the error says why, naming the line(s)");
    }
    my $p = eval { parse_policy($log . $w1 . 'witness w2 ' . $vkey->('w2.example', 4, $w2pub) . "\ngroup g 2 w1 w2\nquorum g\n") };
    ok($p && keys %{ $p->{witnesses} } == 2, 'two witnesses with distinct keys are fine') or diag(ref $@ ? $@->{message} : $@);
}

# RFC 6962 inclusion against a tree built here, for every index of sizes 1..9.
sub leaf_hash { Digest::SHA::sha256("\x00" . $_[0]) }
sub node { Digest::SHA::sha256("\x01" . $_[0] . $_[1]) }
sub mth {
    my @l = @_;
    return leaf_hash($l[0]) if @l == 1;
    my $k = 1;
    $k *= 2 while $k * 2 < @l;
    return node(mth(@l[0 .. $k - 1]), mth(@l[$k .. $#l]));
}
sub path {
    my ($m, @l) = @_;
    return () if @l == 1;
    my $k = 1;
    $k *= 2 while $k * 2 < @l;
    return $m < $k ? (path($m, @l[0 .. $k - 1]), mth(@l[$k .. $#l])) : (path($m - $k, @l[$k .. $#l]), mth(@l[0 .. $k - 1]));
}
my $all_ok = 1;
for my $size (1 .. 9) {
    my @leaves = map { "leaf $_" } 0 .. $size - 1;
    my $root = mth(@leaves);
    for my $i (0 .. $size - 1) {
        my @p = path($i, @leaves);
        $all_ok &&= verify_inclusion($i, $size, leaf_hash($leaves[$i]), \@p, $root);
        $all_ok &&= !verify_inclusion($i, $size, leaf_hash("other"), \@p, $root);
        $all_ok &&= !verify_inclusion($i, $size, leaf_hash($leaves[$i]), [ @p[ 0 .. $#p - 1 ] ], $root) if @p;
    }
}
ok($all_ok, 'inclusion proofs verify for every index of trees of size 1 to 9, and not for another leaf or a short proof');

# -h explains, with an example, and exits 0; a usage error exits 2.
{
    my $script = File::Spec->catfile($FindBin::Bin, qw(.. bin cpantlog-verify-pl));
    my $help = `$^X $script -h 2>&1`;
    is($? >> 8, 0, 'cpantlog-verify-pl -h exits 0');
    like($help, qr/Usage: cpantlog-verify-pl.*Examples:.*--policy.*Exit status/s, '-h gives the usage, examples, flags and exit codes');
    `$^X $script 2>&1`;
    is($? >> 8, 2, 'no arguments is a usage error (exit 2)');
}

# A fork: two checkpoints of one size with different roots, both signed by
# the log's key, are a security error once both were seen (state kept in
# a directory, as cpanm-tlog keeps it in ~/.cpantlog).
{
    require Crypt::PK::Ed25519;
    require File::Temp;
    my $pk = Crypt::PK::Ed25519->new->generate_key;
    my $pub = $pk->export_key_raw('public');
    my $name = 'localhost/cpan-tlog';
    my $keyhash = substr(Digest::SHA::sha256("$name\n\x01$pub"), 0, 4);
    my $vkey = "$name+" . unpack('H8', $keyhash) . '+' . MIME::Base64::encode_base64("\x01$pub", '');
    my $policy = parse_policy("log $vkey\nquorum none\n");
    # $proof_for->($leaf[, $root_leaf]): a proof of $leaf at index 0 of a
    # tree of size 1 whose leaf is $root_leaf (default: $leaf).
    my $proof_for = sub {
        my ($leaf, $root_leaf) = @_;
        my $root = Digest::SHA::sha256("\x00" . ($root_leaf // $leaf));
        my $text = "$name\n1\n" . MIME::Base64::encode_base64($root, '') . "\n";
        my $sig = MIME::Base64::encode_base64($keyhash . $pk->sign_message($text), '');
        return "c2sp.org/tlog-proof\@v1\nextra " . MIME::Base64::encode_base64($leaf, '') . "\nindex 0\n\n$text\n\xe2\x80\x94 $name $sig\n";
    };
    my $entry = sub {
        my ($content, $path) = @_;
        return sprintf "cpan-tlog/v1 upload\npath %s\nsize %d\nsha256 %s\nuploader ETHER\ntime 2021-01-05T12:00:00Z\n",
            $path // 'authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz', length $content, Digest::SHA::sha256_hex($content);
    };
    my $state = File::Temp::tempdir(CLEANUP => 1);
    my %common = (policy => $policy, path => 'authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz', state => $state);
    is(code_of(%common, proof => $proof_for->($entry->('one')), file => 'one'), 0, 'a checkpoint of size 1');
    is(code_of(%common, proof => $proof_for->($entry->('one')), file => 'one'), 0, 'the same checkpoint again');
    is(code_of(%common, proof => $proof_for->($entry->('two')), file => 'two'), 3, 'another root at the same size: a fork, a security error');
    is(code_of(%common, state => File::Temp::tempdir(CLEANUP => 1), proof => $proof_for->($entry->('two')), file => 'two'), 0, 'without the first in the state, nothing to compare');
    # The signed checkpoint is the evidence, whatever else the proof holds.
    is(code_of(%common, proof => $proof_for->($entry->('two')), file => 'three'), 3, 'a fork with a file that does not match: still a security error');
    is(code_of(%common, proof => $proof_for->($entry->('two'), 'x'), file => 'two'), 3, 'a fork whose inclusion proof does not verify: still a security error');

    # Bytes that do not verify are no evidence against the log: anyone who
    # can flip a byte of a proof in transit makes them. A refusal (1), never
    # a security error (the Go verifier agrees: TestDifferential).
    my %fresh = (policy => $policy, path => 'authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz');
    my $good = $proof_for->($entry->('one'));
    my ($head, $text, $sigs) = $good =~ /\A(.*?\n\n)(.*?\n)\n(.*)\z/s or die 'proof shape';
    my $flipped = $sigs =~ s/(.)(=?\n)\z/($1 eq 'A' ? 'B' : 'A') . $2/er;
    for my $c (
        [ 'the log signature flipped',             "$head$text\n$flipped" ],
        [ 'a corrupted duplicate of the log line', "$head$text\n$sigs$flipped" ],
        [ 'CR in the checkpoint text',             $head . ($text =~ s/\n/\r\n/r) . "\n$sigs" ],
        [ 'a control byte in the checkpoint text', $head . ($text =~ s/\n1\n/\n1\x01\n/r) . "\n$sigs" ],
        [ 'the signature line moved into the text', "$head$text$sigs\n$sigs" ],
        [ 'the size changed under the signature',  $head . ($text =~ s/\n1\n/\n2\n/r) . "\n$sigs" ],
    ) {
        is(code_of(%fresh, proof => $c->[1], file => 'one'), 1, "$c->[0]: not verified (1), not a security error");
    }

    # Only an entry the log recorded contradicts the file (the message
    # CPAN::TLog::Cpanm reads as a verdict that stands without the log):
    # one whose inclusion does not verify is refused for that.
    eval { verify_file(%fresh, proof => $proof_for->($entry->('one'), 'x'), file => 'two') };
    like(ref $@ ? $@->{message} : "$@", qr/inclusion proof does not verify/, 'an entry not proven included cannot contradict the file');

    # UTF-8 as Go reads it: noncharacters (U+FFFE, U+FFFF, U+FDD0, U+10FFFF)
    # are valid UTF-8, in a signer's name as in a path; surrogates, overlong
    # forms and code points above U+10FFFF are not. U+13439..U+1343F are
    # format characters since Unicode 15, Go's tables, and no path holds one.
    my $line = sub { "\xe2\x80\x94 some$_[0]one.example " . MIME::Base64::encode_base64("\x01\x02\x03\x04" . ("\x07" x 64), '') . "\n" };
    for my $c ([ "\xef\xbf\xbf", 0 ], [ "\xef\xbf\xbe", 0 ], [ "\xef\xb7\x90", 0 ], [ "\xf4\x8f\xbf\xbf", 0 ],
        [ "\xed\xa0\x80", 1 ], [ "\xc0\x80", 1 ], [ "\xf4\x90\x80\x80", 1 ], [ "\xc2\xa0", 1 ], [ "\xc2\x85", 1 ]) {
        is(code_of(%fresh, proof => $good . $line->($c->[0]), file => 'one'), $c->[1],
            sprintf('an unknown signer named some%sone.example: exit %d', unpack('H*', $c->[0]), $c->[1]));
    }
    for my $c ([ "\xef\xbf\xbe", 0 ], [ "\xef\xb7\x90", 0 ], [ "\xed\xa0\x80", 1 ], [ "\xf0\x93\x90\xb9", 1 ], [ "\xf0\x93\x90\xb0", 1 ], [ "\xef\xbf\xbd", 1 ]) {
        my $path = "authors/id/E/ET/ETHER/Try$c->[0]-0.31.tar.gz";
        is(code_of(%fresh, path => $path, proof => $proof_for->($entry->('one', $path)), file => 'one'), $c->[1],
            sprintf('a path with %s: exit %d', unpack('H*', $c->[0]), $c->[1]));
    }
}

# The state is kept per log key: a new log with the same origin (a new
# local log with the default one) could not be checked (2), saying what to
# do, and is no fork (3) of the old log's tree; once the old state is
# moved aside, the new log is remembered and protected like the first. The
# file kept before keys does not say which key signed it: a root it
# contradicts is 2, never 3.
{
    require Crypt::PK::Ed25519;
    require File::Temp;
    my $name = 'localhost/cpan-tlog';
    my $path = 'authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz';
    my $new_log = sub {
        my $pk = Crypt::PK::Ed25519->new->generate_key;
        my $pub = $pk->export_key_raw('public');
        my $keyhash = substr(Digest::SHA::sha256("$name\n\x01$pub"), 0, 4);
        my $vkey = "$name+" . unpack('H8', $keyhash) . '+' . MIME::Base64::encode_base64("\x01$pub", '');
        my $proof = sub {
            my ($content) = @_;
            my $leaf = sprintf "cpan-tlog/v1 upload\npath %s\nsize %d\nsha256 %s\nuploader ETHER\ntime 2021-01-05T12:00:00Z\n",
                $path, length $content, Digest::SHA::sha256_hex($content);
            my $text = "$name\n1\n" . MIME::Base64::encode_base64(Digest::SHA::sha256("\x00$leaf"), '') . "\n";
            my $sig = MIME::Base64::encode_base64($keyhash . $pk->sign_message($text), '');
            return "c2sp.org/tlog-proof\@v1\nextra " . MIME::Base64::encode_base64($leaf, '') . "\nindex 0\n\n$text\n\xe2\x80\x94 $name $sig\n";
        };
        return { policy => parse_policy("log $vkey\nquorum none\n"), proof => $proof, id => unpack('H8', $keyhash) };
    };
    my ($a, $b) = ($new_log->(), $new_log->());
    my $state = File::Temp::tempdir(CLEANUP => 1);
    my $base = Digest::SHA::sha256_hex($name);
    my $dir = "$state/" . CPAN::TLog::Verify::origin_dir_name($name);    # where the Go client keeps it too
    my $run = sub {
        my ($log, $content, %o) = @_;
        my $r = eval { verify_file(policy => $log->{policy}, proof => $log->{proof}->($content), file => $content, path => $path, state => $o{state} // $state) };
        return ref $@ ? $@ : $@ ? { code => -1, message => "$@" } : { code => 0, message => '' };
    };
    is($run->($a, 'one')->{code}, 0, 'log A: a checkpoint of size 1');
    ok(-e "$dir/key-$a->{id}/checkpoint", "log A's checkpoint is trusted under its key ID ($a->{id})");
    my $r = $run->($b, 'two');
    is($r->{code}, 2, 'log B, same origin, another root at size 1: could not check (2), not a fork (3)');
    like($r->{message}, qr/another log with the same origin.*signed by \Q$name+$a->{id}\E.*mv \S+key-$a->{id} \S+key-$a->{id}\.old/s, 'the message says which key signed what was remembered and what to do');
    ok(!-e "$dir/key-$b->{id}", "nothing was kept for log B");
    rename "$dir/key-$a->{id}", "$dir/key-$a->{id}.old" or die $!;
    is($run->($b, 'two')->{code}, 0, 'log B once the old state is moved aside');
    is($run->($b, 'three')->{code}, 3, "a fork of log B's own tree is a security error");

    # The file kept before keys: "size root" lines of an unknown key.
    my $root_of = sub { MIME::Base64::encode_base64(Digest::SHA::sha256("\x00" . sprintf "cpan-tlog/v1 upload\npath %s\nsize %d\nsha256 %s\nuploader ETHER\ntime 2021-01-05T12:00:00Z\n", $path, length $_[0], Digest::SHA::sha256_hex($_[0])), '') };
    my $old_state = sub {
        my $old = File::Temp::tempdir(CLEANUP => 1);
        File::Path::make_path("$old/checkpoints");
        open my $fh, '>', "$old/checkpoints/$base" or die $!;
        print $fh "1 " . $root_of->('one') . "\n";
        close $fh;
        return $old;
    };
    is($run->($a, 'one', state => $old_state->())->{code}, 0, 'a root the old file remembers: verified');
    $r = $run->($b, 'two', state => $old_state->());
    is($r->{code}, 2, 'a root the old file contradicts: could not check (2), not a fork: the old file does not say which key signed it');
    like($r->{message}, qr/another log with the same origin, or a fork.*mv \S+$base \S+$base\.old/s, 'the message says what to do');
}

done_testing();
