use strict;
use warnings;
use Test::More;
use File::Spec;
use FindBin ();
use lib "$FindBin::Bin/../lib";
use CPAN::TLog::Verify qw(parse_policy parse_proof verify_checkpoint verify_file);
use Digest::SHA ();
use MIME::Base64 ();

# ML-DSA-44 witnesses (C2SP tlog-cosignature, key type 0x06). This
# verifier parses their keys but cannot check their signatures (CryptX
# has no ML-DSA): a cosignature it cannot check is neither counted nor
# refused; a quorum that needs one is "could not check" (2), saying so
# and naming the tool that can. The keys and proofs are the shared
# vectors' (testdata/vectors/mldsa-*, made by a real log with a real
# ML-DSA-44 witness).
my $vectors = -d "$FindBin::Bin/vectors" ? "$FindBin::Bin/vectors" : File::Spec->catdir($FindBin::Bin, qw(.. .. .. testdata vectors));
plan skip_all => "no shared vectors at $vectors" unless -d "$vectors/mldsa-valid";

sub slurp {
    my ($name) = @_;
    open my $fh, '<:raw', $name or die "$name: $!";
    local $/;
    return scalar <$fh>;
}

sub vector_file {
    my ($dir) = @_;
    return "$dir/file" if -e "$dir/file";
    return File::Spec->catfile($vectors, '..', slurp("$dir/source") =~ /(\S+)/);
}

sub err_of {
    my ($code) = @_;
    my $r = eval { $code->() };
    return { code => 0, r => $r } if $r;
    return ref $@ ? $@ : { code => -1, message => "$@" };
}

my $dir = "$vectors/mldsa-valid";
my $text = slurp("$dir/policy");
my ($pq) = $text =~ /^witness pq (\S+)/m or BAIL_OUT('no pq witness in mldsa-valid/policy');
my ($w1) = $text =~ /^witness w1 (\S+)/m;
my ($log) = $text =~ /^log (\S+)/m;

# The policy: an ML-DSA-44 key is parsed, with its key ID checked.
my $p = parse_policy($text);
is($p->{witnesses}{pq}{alg}, 'ML-DSA-44', 'an ML-DSA-44 witness key (type 0x06) is accepted');
is($p->{witnesses}{w1}{alg}, 'Ed25519', 'an Ed25519 witness key (type 0x04) is still read as one');
my ($name, undef, $b64) = split /\+/, $pq, 3;
my $raw = MIME::Base64::decode_base64($b64);
is(length $raw, 1313, 'the ML-DSA-44 vkey is the type byte and 1312 bytes');
my $with_key = sub {
    my ($key) = @_;
    my $id = unpack('H8', substr(Digest::SHA::sha256("$name\n$key"), 0, 4));
    return "$name+$id+" . MIME::Base64::encode_base64($key, '');
};
my %bad = (
    'wrong key ID'            => "$name+00000000+$b64",
    'short ML-DSA-44 key'     => $with_key->(substr($raw, 0, -1)),
    'long ML-DSA-44 key'      => $with_key->($raw . "\0"),
    'type 0x05'               => $with_key->("\x05" . substr($raw, 1)),
    'type 0x07'               => $with_key->("\x07" . substr($raw, 1)),
    'type 0x06, 32-byte key'  => $with_key->("\x06" . ("\1" x 32)),
);
for my $case (sort keys %bad) {
    my $e = err_of(sub { parse_policy("log $log\nwitness pq $bad{$case}\nquorum pq\n") });
    is($e->{code}, 2, "policy with an ML-DSA-44 witness key, $case: refused");
    like($e->{message} // '', qr/line 2.*0x06, ML-DSA-44/, "... naming the line and the key types accepted");
}
{
    my $id2 = unpack('H8', substr(Digest::SHA::sha256("pq2.example\n$raw"), 0, 4));
    my $e = err_of(sub { parse_policy("log $log\nwitness pq $pq\nwitness pq2 pq2.example+$id2+$b64\ngroup g 2 pq pq2\nquorum g\n") });
    like($e->{message} // '', qr/same public key as witness 'pq'/, 'one ML-DSA-44 key on two witness lines is refused (C2SP tlog-policy)');
}

# The checkpoint: a quorum that needs pq could not be checked, and says so.
my $proof = parse_proof(slurp("$dir/proof"));
my $e = err_of(sub { verify_checkpoint($p, $proof->{checkpoint}) });
is($e->{code}, 2, 'verify_checkpoint: a quorum that needs the ML-DSA-44 cosignature could not be checked');
like($e->{message}, qr/could not check: .*quorum 'both' needs the ML-DSA-44 cosignature of witness pq.*cannot check \(CryptX has no ML-DSA\).*cosignatures of w1 verified.*cpantlog verify/s,
    'the message says which cosignature, why, what did verify, and which tool can check it');

# A quorum met without it: verified, and pq listed as not checked.
my $any = parse_policy($text =~ s/group both 2 w1 pq/group both any w1 pq/r);
my $cp = verify_checkpoint($any, $proof->{checkpoint});
is_deeply([ $cp->{cosigned_by}, $cp->{not_checked} ], [ ['w1'], ['pq'] ], 'quorum any: met by w1; pq is not counted, and listed as not checked');

# What fails whatever pq's cosignature is, is refused; a file that is not
# the entry's is not called "not the log's" (the quorum is not known).
my $flipped = "$vectors/mldsa-flipped-file";
$e = err_of(sub { verify_file(policy => slurp("$flipped/policy"), proof => slurp("$flipped/proof"), file => slurp(vector_file($flipped)), path => slurp("$flipped/path") =~ /(\S+)/) });
is($e->{code}, 1, 'a file that is not the entry: refused, though the quorum could not be checked');
unlike($e->{message}, qr/does not match the log/, '... not as "does not match the log", which the hooks take as standing without the log');
like($e->{message}, qr/could not be checked/, '... saying the quorum could not be checked');

# Not remembered in the trusted state: the checkpoint is not trusted.
SKIP: {
    eval { require File::Temp; 1 } or skip 'File::Temp', 1;
    my $state = File::Temp::tempdir(CLEANUP => 1);
    $e = err_of(sub { verify_file(policy => $text, proof => slurp("$dir/proof"), file => slurp(vector_file($dir)), path => slurp("$dir/path") =~ /(\S+)/, state => $state) });
    is($e->{code}, 2, 'verify_file with a state: could not check');
    my @kept;
    require File::Find;
    File::Find::find({ no_chdir => 1, wanted => sub { push @kept, $_ if -f } }, $state);
    is_deeply(\@kept, [], 'nothing was kept in the trusted state for a checkpoint whose quorum could not be checked');
}

# A cosignature line of pq's key with a signature of the wrong length
# cannot verify: refused, as the Go client does.
my $short = "$vectors/mldsa-cosignature-wrong-size";
$e = err_of(sub { verify_checkpoint(parse_policy(slurp("$short/policy")), parse_proof(slurp("$short/proof"))->{checkpoint}) });
is($e->{code}, 1, 'an ML-DSA-44 cosignature of the wrong length is refused');
like($e->{message}, qr/witness pq's key that does not verify .*2428 bytes/, '... saying why');

# The toolchain hook (cpanm-tlog, carton-tlog, CPAN.pm): a mirror's proof
# whose quorum needs pq could not be checked, and says so, not that the
# proof "does not verify".
{
    require CPAN::TLog::Cpanm;
    require File::Temp;
    require File::Path;
    require File::Basename;
    my $root = File::Temp::tempdir(CLEANUP => 1);
    local $ENV{CPANTLOG_STATE} = File::Temp::tempdir(CLEANUP => 1);
    my ($path) = slurp("$dir/path") =~ /(\S+)/;
    my $bytes = slurp(vector_file($dir));
    my $dst = "$root/" . CPAN::TLog::Cpanm::proof_path($path, Digest::SHA::sha256_hex($bytes));
    File::Path::make_path(File::Basename::dirname($dst));
    open my $fh, '>:raw', $dst or die $!;
    print $fh slurp("$dir/proof");
    close $fh;
    CPAN::TLog::Cpanm::use_policy($text =~ s{^(log \S+).*$}{$1}mr);
    my ($code, $msg) = CPAN::TLog::Cpanm::verify_bytes("file://$root", $path, $bytes);
    is($code, 2, "the hook, a mirror's proof whose quorum needs pq: could not check");
    like($msg, qr/the mirror's proof could not be checked .*cannot check \(CryptX has no ML-DSA\)/, '... saying the proof could not be checked, and why');
}

done_testing();
