#!/usr/bin/perl
# copy-vectors.pl DISTDIR: copies the repository's shared vectors
# (testdata/vectors) into DISTDIR/t/vectors for 'make dist', and the
# CPANTLOG_NOVERIFY vectors (testdata/vectors-noverify.txt) to
# DISTDIR/t/vectors-noverify.txt, and the trusted-state path vectors
# (testdata/vectors-statepath.txt) to DISTDIR/t/vectors-statepath.txt,
# so that the tests travel with the
# distribution; then lists what it copied in DISTDIR/MANIFEST.
#
# The file a vector checks (its own 'file', or the sample tarball of
# testdata/ its 'source' names) is copied once per content, to
# DISTDIR/t/vector-files/<sha256 of it>, and the vector in DISTDIR gets a
# 'source' naming it (relative to t/, as in the repository a 'source' is
# relative to testdata/): most vectors check the same tarball, and one
# copy each kept the distribution at 1.7 MB.
#
# CPANTLOG_TESTDATA names testdata/ when client/perl is not in its
# repository.
use strict;
use warnings;
use Digest::SHA ();
use File::Copy ();
use File::Path ();
use File::Spec ();
use FindBin ();

my $dist = shift or die "usage: copy-vectors.pl DISTDIR\n";
my $testdata = $ENV{CPANTLOG_TESTDATA} || File::Spec->catdir($FindBin::Bin, qw(.. .. .. testdata));
my $vectors = File::Spec->catdir($testdata, 'vectors');
opendir my $dh, $vectors or die "copy-vectors.pl: $vectors: $! (run 'make dist' in the repository's client/perl)\n";

my @added;    # paths relative to DISTDIR, for its MANIFEST

sub copy_to {
    my ($src, $rel) = @_;
    my $to = File::Spec->catfile($dist, split m{/}, $rel);
    File::Copy::copy($src, $to) or die "copy-vectors.pl: copy $src to $to: $!\n";
    push @added, $rel;
}

my ($n, %stored) = (0);
for my $name (sort grep { !/^\./ } readdir $dh) {
    my $from = File::Spec->catdir($vectors, $name);
    next unless -d $from;
    File::Path::make_path(File::Spec->catdir($dist, 't', 'vectors', $name));
    for my $f (qw(want want-without-mldsa path policy proof mode)) {
        my $src = File::Spec->catfile($from, $f);
        copy_to($src, "t/vectors/$name/$f") if -e $src;
    }
    my $file = File::Spec->catfile($from, 'file');
    unless (-e $file) {
        open my $fh, '<', File::Spec->catfile($from, 'source') or die "copy-vectors.pl: vector $name has neither 'file' nor 'source': $!\n";
        my ($source) = <$fh> =~ /(\S+)/ or die "copy-vectors.pl: vector $name: empty 'source'\n";
        $file = File::Spec->catfile($testdata, split m{/}, $source);
    }
    my $sha = Digest::SHA->new(256)->addfile($file, 'b')->hexdigest;
    unless ($stored{$sha}++) {
        File::Path::make_path(File::Spec->catdir($dist, 't', 'vector-files'));
        copy_to($file, "t/vector-files/$sha");
    }
    my $source = File::Spec->catfile($dist, 't', 'vectors', $name, 'source');
    open my $out, '>', $source or die "copy-vectors.pl: $source: $!\n";
    print $out "vector-files/$sha\n";
    close $out or die "copy-vectors.pl: $source: $!\n";
    push @added, "t/vectors/$name/source";
    $n++;
}
printf "copy-vectors.pl: %d shared vectors in %s/t/vectors, the %d files they check in %s/t/vector-files\n", $n, $dist, scalar keys %stored, $dist;
copy_to(File::Spec->catfile($testdata, 'vectors-noverify.txt'), 't/vectors-noverify.txt');
print "copy-vectors.pl: the CPANTLOG_NOVERIFY vectors in $dist/t/vectors-noverify.txt\n";
copy_to(File::Spec->catfile($testdata, 'vectors-statepath.txt'), 't/vectors-statepath.txt');
print "copy-vectors.pl: the trusted-state path vectors in $dist/t/vectors-statepath.txt\n";
copy_to(File::Spec->catfile($testdata, 'vectors-entries.jsonl'), 't/vectors-entries.jsonl');
print "copy-vectors.pl: the entry vectors in $dist/t/vectors-entries.jsonl\n";

# The distribution's MANIFEST lists every file it ships (Kwalitee's
# manifest_matches_dist). Written anew rather than appended to: DISTDIR's
# MANIFEST may be a hard link to the source tree's.
my $manifest = File::Spec->catfile($dist, 'MANIFEST');
open my $in, '<', $manifest or die "copy-vectors.pl: $manifest: $!\n";
my @lines = <$in>;
close $in;
my %listed = map { /^(\S+)/ ? ($1 => 1) : () } @lines;
unlink $manifest or die "copy-vectors.pl: $manifest: $!\n";
open my $out, '>', $manifest or die "copy-vectors.pl: $manifest: $!\n";
print $out @lines, map { "$_\n" } grep { !$listed{$_} } @added;
close $out or die "copy-vectors.pl: $manifest: $!\n";
print "copy-vectors.pl: ", scalar(@added), " files added to $manifest\n";
