#!/usr/bin/perl
# The trusted state CPAN::TLog::Verify shares with the Go client: the
# origin's directory (the shared vectors), RFC 6962 consistency proofs
# (made from a tree's hashes and verified, and refused once altered), the
# tiles' paths, and the old Perl records checked once and moved aside.
use strict;
use warnings;
use Test::More;
use FindBin ();
use File::Spec ();
use File::Temp ();
use File::Path ();
use Digest::SHA ();
use MIME::Base64 ();
use lib "$FindBin::Bin/../lib";
use CPAN::TLog::Verify qw(parse_policy verify_file verify_consistency origin_dir_name);

# The shared vectors are the repository's testdata/vectors-statepath.txt;
# a distribution carries them in t/. The Go client is held to the same
# file (client/statepath_test.go).
my ($vectors) = grep { -e } "$FindBin::Bin/vectors-statepath.txt",
    File::Spec->catfile($FindBin::Bin, qw(.. .. .. testdata vectors-statepath.txt));
ok(defined $vectors, 'the shared trusted-state path vectors are here')
    or diag("build the distribution with 'make dist' in the repository's client/perl");
if ($vectors) {
    open my $fh, '<:raw', $vectors or die "$vectors: $!";
    my $n = 0;
    while (my $line = <$fh>) {
        chomp $line;
        next if $line eq '' || $line =~ /\A#/;
        my ($origin, $want) = split /\t/, $line, 2;
        die "malformed vector line: $line" unless defined $want;
        $origin =~ s/\\(?:x([0-9a-fA-F]{2})|(\\))/defined $1 ? chr hex $1 : '\\'/ge;
        is(origin_dir_name($origin), $want, 'origin ' . unpack('H*', $origin) . " is $want");
        $n++;
    }
    cmp_ok($n, '>=', 30, "$n shared vectors");
}
for my $origin ('..', '.', '../../x', '/', "\x00", 'a' x 300) {
    my $d = origin_dir_name($origin);
    ok($d ne '' && $d ne '.' && $d ne '..' && $d !~ m{[/\\\x00]} && length($d) <= 255, "origin '" . unpack('H*', $origin) . "' is one safe path element ($d)");
}

# Consistency: for every pair of sizes up to 33, the proof made from the
# tree verifies, and any change to it, its roots or its sizes does not.
{
    my @leaves = map { Digest::SHA::sha256("\x00leaf $_") } 0 .. 40;
    my $node = sub { Digest::SHA::sha256("\x01$_[0]$_[1]") };
    my $mth;
    $mth = sub {
        my ($lo, $hi) = @_;
        return $leaves[$lo] if $hi - $lo == 1;
        my $k = 1;
        $k <<= 1 while $k * 2 < $hi - $lo;
        return $node->($mth->($lo, $lo + $k), $mth->($lo + $k, $hi));
    };
    my ($ok, $bad, $checked) = (0, 0, 0);
    for my $n (1 .. 33) {
        for my $m (1 .. $n) {
            my $p = CPAN::TLog::Verify::consistency_proof($m, $n, $mth);
            my ($r1, $r2) = ($mth->(0, $m), $mth->(0, $n));
            $checked++;
            $ok++ if verify_consistency($m, $n, $p, $r1, $r2);
            $bad++ if verify_consistency($m, $n, $p, $r2, $r1) && $r1 ne $r2;
            $bad++ if $m < $n && verify_consistency($m + 1, $n, $p, $mth->(0, $m + 1), $r2) && $m + 1 < $n;
            for my $i (0 .. $#$p) {
                my @q = @$p;
                $q[$i] = Digest::SHA::sha256($q[$i]);
                $bad++ if verify_consistency($m, $n, \@q, $r1, $r2);
            }
            $bad++ if @$p && verify_consistency($m, $n, [ @$p[ 0 .. $#$p - 1 ] ], $r1, $r2);
            $bad++ if verify_consistency($m, $n, [ @$p, $r1 ], $r1, $r2);
        }
    }
    is($ok, $checked, "every consistency proof made from the tree verifies ($checked pairs)");
    is($bad, 0, 'no altered proof, root or size verifies');
    ok(!verify_consistency(5, 4, [], $mth->(0, 5), $mth->(0, 4)), 'a smaller second size never verifies');
    ok(verify_consistency(0, 7, [], '', $mth->(0, 7)), 'the empty tree is consistent with any');
}

# Tile paths, as C2SP tlog-tiles names them.
is(CPAN::TLog::Verify::tile_path(0, 0, 256), 'tile/0/000', 'tile 0');
is(CPAN::TLog::Verify::tile_path(1, 1234067, 256), 'tile/1/x001/x234/067', 'tile 1234067 of level 1');
is(CPAN::TLog::Verify::tile_path(0, 5, 17), 'tile/0/005.p/17', 'a partial tile');

# The old Perl records (checkpoints/<sha256 of the origin>-<key ID>): a
# fork they show is still caught, once; then they are moved aside, and
# the checkpoint is kept where the Go client reads it.
{
    require Crypt::PK::Ed25519;
    my $name = 'localhost/cpan-tlog';
    my $path = 'authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz';
    my $pk = Crypt::PK::Ed25519->new->generate_key;
    my $pub = $pk->export_key_raw('public');
    my $keyhash = substr(Digest::SHA::sha256("$name\n\x01$pub"), 0, 4);
    my $id = unpack('H8', $keyhash);
    my $policy = parse_policy("log $name+$id+" . MIME::Base64::encode_base64("\x01$pub", '') . "\nquorum none\n");
    my $leaf_of = sub { sprintf "cpan-tlog/v1 upload\npath %s\nsize %d\nsha256 %s\nuploader ETHER\ntime 2021-01-05T12:00:00Z\n", $path, length $_[0], Digest::SHA::sha256_hex($_[0]) };
    my $root_of = sub { MIME::Base64::encode_base64(Digest::SHA::sha256("\x00" . $leaf_of->($_[0])), '') };
    my $proof = sub {
        my ($content) = @_;
        my $text = "$name\n1\n" . $root_of->($content) . "\n";
        my $sig = MIME::Base64::encode_base64($keyhash . $pk->sign_message($text), '');
        return "c2sp.org/tlog-proof\@v1\nextra " . MIME::Base64::encode_base64($leaf_of->($content), '') . "\nindex 0\n\n$text\n\xe2\x80\x94 $name $sig\n";
    };
    my $run = sub {
        my ($state, $content) = @_;
        my $r = eval { verify_file(policy => $policy, proof => $proof->($content), file => $content, path => $path, state => $state) };
        return ref $@ ? $@ : $@ ? { code => -1, message => "$@" } : { code => 0, message => '' };
    };
    my $state = File::Temp::tempdir(CLEANUP => 1);
    my $old = "$state/checkpoints/" . Digest::SHA::sha256_hex($name) . "-$id";
    File::Path::make_path("$state/checkpoints");
    open my $fh, '>', $old or die $!;
    print $fh '1 ' . $root_of->('one') . "\n";
    close $fh;
    my $r = $run->($state, 'two');
    is($r->{code}, 3, 'a fork the old records show: a security error');
    ok(-e $old, 'the old records stay until a checkpoint they agree with is seen');
    is($run->($state, 'one')->{code}, 0, 'a checkpoint the old records agree with');
    ok(!-e $old, 'the old records are moved aside');
    my $kept = "$state/" . origin_dir_name($name) . "/key-$id/checkpoint";
    ok(-e $kept, 'the checkpoint is kept where the Go client reads it');
    is($run->($state, 'two')->{code}, 3, 'a fork of the kept checkpoint is a security error');
    opendir my $dh, "$state/" . origin_dir_name($name) . '/evidence' or die $!;
    my @ev = grep { !/\A\./ } readdir $dh;
    is(scalar @ev, 1, 'its evidence is saved where the Go client saves its own');

    # A damaged trusted checkpoint (empty, torn, not a checkpoint) could
    # not be checked (2): never verified over it, never a security error.
    my $text_of = sub { my ($t) = @_; "$t\n\xe2\x80\x94 $name " . MIME::Base64::encode_base64($keyhash . $pk->sign_message($t), '') . "\n" };
    my $good = $text_of->("$name\n1\n" . $root_of->('one') . "\n");
    for my $c ([ 'empty', '' ], [ 'torn', substr($good, 0, 40) ], [ 'garbage', "\x00\xff" x 20 ],
               [ 'signed, no size', $text_of->("$name\nx\n" . $root_of->('one') . "\n") ],
               [ 'signed, short root', $text_of->("$name\n1\nAAAA\n") ]) {
        my $st = File::Temp::tempdir(CLEANUP => 1);
        my $kd = "$st/" . origin_dir_name($name) . "/key-$id";
        File::Path::make_path($kd);
        open my $out, '>:raw', "$kd/checkpoint" or die $!;
        print $out $c->[1];
        close $out;
        my $r = $run->($st, 'one');
        is($r->{code}, 2, "a trusted checkpoint that is $c->[0]: could not check (2)") or diag($r->{message});
    }

    # A hostile origin stays inside the state directory.
    my $top = File::Temp::tempdir(CLEANUP => 1);
    my $pk2 = Crypt::PK::Ed25519->new->generate_key;
    my $pub2 = $pk2->export_key_raw('public');
    my $kh2 = substr(Digest::SHA::sha256("..\n\x01$pub2"), 0, 4);
    my $p2 = parse_policy("log ..+" . unpack('H8', $kh2) . '+' . MIME::Base64::encode_base64("\x01$pub2", '') . "\nquorum none\n");
    my $text = "..\n1\n" . $root_of->('one') . "\n";
    my $sig = MIME::Base64::encode_base64($kh2 . $pk2->sign_message($text), '');
    my $pr = "c2sp.org/tlog-proof\@v1\nextra " . MIME::Base64::encode_base64($leaf_of->('one'), '') . "\nindex 0\n\n$text\n\xe2\x80\x94 .. $sig\n";
    ok(eval { verify_file(policy => $p2, proof => $pr, file => 'one', path => $path, state => "$top/state"); 1 }, "the origin '..' verifies") or diag(ref $@ ? $@->{message} : $@);
    opendir my $th, $top or die $!;
    is_deeply([ sort grep { !/\A\.\.?\z/ } readdir $th ], ['state'], "the origin '..' wrote nothing beside the state directory");
    ok(-e "$top/state/%2E%2E/key-" . unpack('H8', $kh2) . '/checkpoint', 'it is kept in %2E%2E');
}

done_testing();
