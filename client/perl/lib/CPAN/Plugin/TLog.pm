package CPAN::Plugin::TLog;

# CPAN::Plugin::TLog - a CPAN.pm plugin that verifies each downloaded
# distribution against cpan-tlog before CPAN.pm builds it. See the POD.

use strict;
use warnings;
use File::Spec ();
use CPAN::TLog::Cpanm ();    # verify_bytes, the proof lookup and freshness rules cpanm-tlog uses
use CPAN::TLog::Verify qw(EXIT_OK EXIT_USAGE);

our $VERSION = '1.00';

sub new { my ($class, @args) = @_; return bless { args => \@args, index_checked => 0 }, $class }

# _mirror: the first mirror of CPAN.pm's urllist, without its trailing /.
sub _mirror {
    my ($url) = @{ $CPAN::Config->{urllist} || [] };
    return undef unless defined $url;
    $url =~ s{/+\z}{};
    $url = "file://$url" if $url =~ m{\A/};
    return $url;
}

sub _say { $CPAN::Frontend ? $CPAN::Frontend->mywarn("$_[0]\n") : print STDERR "$_[0]\n" }

# _stop marks the distribution as not buildable, with the reason: CPAN.pm
# then says "Could not make" and builds nothing of it.
sub _stop {
    my ($dist, $why) = @_;
    require CPAN::Distrostatus;
    $dist->{make} = CPAN::Distrostatus->new("NO cpan-tlog: $why");
    _say("cpan-tlog: $why");
}

# pre_get, once: the index files CPAN.pm read (02packages, which chose
# the distribution, and 01mailrc) must verify, else nothing is built.
sub pre_get {
    my ($self, $dist) = @_;
    return if $self->{index_checked}++;
    my $mirror = _mirror();
    for my $path ('modules/02packages.details.txt.gz', 'authors/01mailrc.txt.gz') {
        # CPAN.pm keeps what it downloads under keep_source_where, and reads
        # a file:// mirror's files in place.
        my @where = (File::Spec->catfile($CPAN::Config->{keep_source_where} // '', split m{/}, $path));
        unshift @where, File::Spec->catfile($1, split m{/}, $path) if ($mirror // '') =~ m{\Afile://(/.*)\z};
        my ($file) = grep { -f } @where;
        next if !$file && $path ne 'modules/02packages.details.txt.gz';    # CPAN.pm did without it
        $file //= $where[-1];
        my $bytes = CPAN::TLog::Cpanm::_slurp($file);
        my ($code, $why) = !defined $mirror ? (EXIT_USAGE, 'CPAN.pm has no urllist')
            : !defined $bytes ? (EXIT_USAGE, "cannot read the index CPAN.pm used ($file)")
            : CPAN::TLog::Cpanm::verify_bytes($mirror, $path, $bytes);
        next if $code == EXIT_OK;
        $self->{index_error} = "the index ($path) did not verify against the log: $why";
        push @CPAN::TLog::Cpanm::problems, [ $code, $path, $why ];
        last;
    }
}

# post_get: the downloaded archive must verify before its Makefile.PL or
# Build.PL runs.
sub post_get {
    my ($self, $dist) = @_;
    return if $dist->{cpantlog_checked}++;
    if ($self->{index_error}) {
        _stop($dist, $self->{index_error});
        return;
    }
    my $id = $dist->id // '';
    return if $id =~ m{\A\.} || !$dist->{localfile};    # a local directory (cpan .), not from a mirror
    my $path = "authors/id/$id";
    my $bytes = CPAN::TLog::Cpanm::_slurp($dist->{localfile});
    my ($code, $why) = defined $bytes ? CPAN::TLog::Cpanm::verify_bytes(_mirror(), $path, $bytes) : (EXIT_USAGE, "cannot read $dist->{localfile}");
    if ($code == EXIT_OK) {
        $CPAN::TLog::Cpanm::verified++;
        return;
    }
    push @CPAN::TLog::Cpanm::problems, [ $code, $path, $why ];
    _stop($dist, ($code == EXIT_USAGE ? "COULD NOT CHECK $path: " : "REFUSED $path: ") . $why);
}

1;

__END__

=head1 NAME

CPAN::Plugin::TLog - CPAN.pm verifies every distribution against cpan-tlog before building it

=head1 SYNOPSIS

  cpan> o conf plugin_list push CPAN::Plugin::TLog
  cpan> o conf commit

=head1 DESCRIPTION

A CPAN.pm plugin (CPAN.pm 2.07 or later). Before CPAN.pm builds a
distribution it downloaded, the plugin verifies the archive against the
cpan-tlog transparency log (L<CPAN::TLog::Verify>): its c2sp.org/tlog-proof
from the first mirror of C<urllist> (C<tlog/proofs/...>), else from the
log named in the policy; and, once per session, the 02packages CPAN.pm
resolved modules with (logged, and not older than
C<CPANTLOG_MAX_INDEX_LAG>, default 24h). A distribution that does not
verify is not built: CPAN.pm reports "Could not make: cpan-tlog: ..." with
the file and the reason, and at exit the plugin lists every such file.

The policy is C<$CPANTLOG_POLICY>, else C<~/.cpantlog/policy> (the cpantlog
format). The exit status of C<cpan> is then 1 (refused), 3 (security
error) or 2 (could not check), whatever CPAN.pm would have returned.

=cut
