#!/usr/bin/perl
# copy-vectors.pl DISTDIR: copies the repository's shared vectors
# (testdata/vectors) into DISTDIR/t/vectors for 'make dist', each with its
# file beside it (a vector's 'source' names a sample tarball of testdata/),
# and the CPANTLOG_NOVERIFY vectors (testdata/vectors-noverify.txt) to
# DISTDIR/t/vectors-noverify.txt, so that the tests travel with the
# distribution. CPANTLOG_TESTDATA names testdata/ when client/perl is not
# in its repository.
use strict;
use warnings;
use File::Copy ();
use File::Path ();
use File::Spec ();
use FindBin ();

my $dist = shift or die "usage: copy-vectors.pl DISTDIR\n";
my $testdata = $ENV{CPANTLOG_TESTDATA} || File::Spec->catdir($FindBin::Bin, qw(.. .. .. testdata));
my $vectors = File::Spec->catdir($testdata, 'vectors');
opendir my $dh, $vectors or die "copy-vectors.pl: $vectors: $! (run 'make dist' in the repository's client/perl)\n";
my $n = 0;
for my $name (grep { !/^\./ } readdir $dh) {
    my $from = File::Spec->catdir($vectors, $name);
    my $to = File::Spec->catdir($dist, 't', 'vectors', $name);
    File::Path::make_path($to);
    for my $f (qw(want path policy proof file mode)) {
        my $src = File::Spec->catfile($from, $f);
        File::Copy::copy($src, File::Spec->catfile($to, $f)) or die "copy $src: $!\n" if -e $src;
    }
    if (-e File::Spec->catfile($from, 'source')) {
        open my $fh, '<', File::Spec->catfile($from, 'source') or die $!;
        my ($source) = <$fh> =~ /(\S+)/;
        File::Copy::copy(File::Spec->catfile($testdata, $source), File::Spec->catfile($to, 'file')) or die "copy $source: $!\n";
    }
    $n++;
}
print "copy-vectors.pl: $n shared vectors in $dist/t/vectors\n";
my $noverify = File::Spec->catfile($testdata, 'vectors-noverify.txt');
File::Copy::copy($noverify, File::Spec->catfile($dist, 't', 'vectors-noverify.txt')) or die "copy $noverify: $!\n";
print "copy-vectors.pl: $noverify in $dist/t\n";
