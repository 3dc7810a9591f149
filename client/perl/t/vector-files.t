use strict;
use warnings;
use Test::More;
use File::Spec;
use FindBin ();
use Digest::SHA ();

# The shared vectors as t/verify.t finds them: t/vectors in the
# distribution, the repository's testdata/vectors in a checkout. Each has
# what t/verify.t reads, and exactly one file to check: its own 'file', or
# the one its 'source' names. In the distribution every such file is in
# t/vector-files, once, named by its SHA-256 (tools/copy-vectors.pl).
my $in_dist = -d "$FindBin::Bin/vectors";
my $vectors = $in_dist ? "$FindBin::Bin/vectors" : File::Spec->catdir($FindBin::Bin, qw(.. .. .. testdata vectors));
plan skip_all => "no shared vectors at $vectors (build the distribution with 'make dist' in the repository's client/perl)" unless -d $vectors;

sub slurp {
    my ($name) = @_;
    open my $fh, '<:raw', $name or die "$name: $!";
    local $/;
    my $b = <$fh>;
    return $b;
}

opendir my $dh, $vectors or die "$vectors: $!";
my @names = sort grep { !/^\./ } readdir $dh;
cmp_ok(scalar @names, '>=', 10, 'shared vectors present');
my %used;
for my $name (@names) {
    my $dir = "$vectors/$name";
    my @missing = grep { !-e "$dir/$_" } qw(want path policy);
    ok(!@missing, "vector $name has want, path and policy") or diag("missing: @missing");
    my @has = grep { -e "$dir/$_" } qw(file source);
    is(scalar @has, 1, "vector $name has exactly one of 'file' and 'source'") or next;
    next if $has[0] eq 'file';
    my ($source) = slurp("$dir/source") =~ /(\S+)/;
    my $file = File::Spec->catfile($vectors, File::Spec->updir, split m{/}, $source // '');
    ok(defined $source && -f $file, "vector $name: its source $file is here") or next;
    next unless $in_dist;
    like($source, qr{\Avector-files/[0-9a-f]{64}\z}, "vector $name: its source is in t/vector-files");
    $used{$source}++;
}

if ($in_dist) {
    opendir my $fh, "$FindBin::Bin/vector-files" or die "t/vector-files: $!";
    my @stored = sort grep { !/^\./ } readdir $fh;
    ok(@stored > 0, 't/vector-files holds the files the vectors check');
    for my $sha (@stored) {
        is(Digest::SHA->new(256)->addfile("$FindBin::Bin/vector-files/$sha", 'b')->hexdigest, $sha, "t/vector-files/$sha is named by its SHA-256");
        ok($used{"vector-files/$sha"}, "t/vector-files/$sha is checked by a vector");
    }
}

done_testing();
