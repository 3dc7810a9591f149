use strict;
use warnings;
use Test::More;
use File::Spec;
use FindBin ();
use JSON::PP ();
use lib "$FindBin::Bin/../lib";
use CPAN::TLog::Verify;

# The shared entry vectors are the repository's
# testdata/vectors-entries.jsonl ('make dist' copies them to t/), written
# from the Go parser's tables (log/entry): the two parsers give every entry
# the same verdict.
my ($vectors) = grep { -e } "$FindBin::Bin/vectors-entries.jsonl",
    File::Spec->catfile($FindBin::Bin, qw(.. .. .. testdata vectors-entries.jsonl));
ok(defined $vectors, 'the shared entry vectors are here') or done_testing(), exit;

open my $fh, '<:raw', $vectors or die "$vectors: $!";
my $json = JSON::PP->new->utf8;
my $n = 0;
while (my $line = <$fh>) {
    my $v = $json->decode($line);
    my $leaf = $v->{entry};
    utf8::encode($leaf);    # the entry's bytes, as the log hashes them
    my $e = CPAN::TLog::Verify::_parse_entry($leaf);
    is(defined $e ? 1 : 0, $v->{valid} ? 1 : 0, "$v->{name}: " . ($v->{valid} ? 'valid' : 'refused'));
    $n++;
}
cmp_ok($n, '>=', 50, "$n vectors played");
done_testing();
