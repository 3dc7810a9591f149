package CPAN::Plugin::TLog;

# CPAN::Plugin::TLog - CPAN.pm builds only what cpan-tlog verified. The
# archive is verified where it arrives (CPAN.pm's get), the tree is
# unpacked only from bytes that still hash to what verified, and every
# later step (prepare, make, test, install, look) runs only in a tree
# unpacked so in this session. See the POD.

use strict;
use warnings;
use Cwd ();
use Digest::SHA ();
use File::Spec ();
BEGIN { $ENV{CPANTLOG_TOOL} ||= 'CPAN::Plugin::TLog' }
use CPAN::TLog::Cpanm ();    # the records, the proof lookup and freshness rules cpanm-tlog uses
use CPAN::TLog::Verify qw(EXIT_OK EXIT_NOT_VERIFIED EXIT_USAGE);

our $VERSION = '1.00';

sub new { my ($class, @args) = @_; return bless { args => \@args }, $class }

# _mirror: the first mirror of CPAN.pm's urllist, without its trailing /.
sub _mirror {
    my ($url) = @{ $CPAN::Config->{urllist} || [] };
    return undef unless defined $url;
    $url =~ s{/+\z}{};
    $url = "file://$url" if $url =~ m{\A/};
    return $url;
}

sub _say { $CPAN::Frontend ? $CPAN::Frontend->mywarn("$_[0]\n") : print STDERR "$_[0]\n" }

sub _status {
    require CPAN::Distrostatus;
    return CPAN::Distrostatus->new("NO cpan-tlog: $_[0]");
}

# _is_dot: a local directory (cpan .), not a distribution from a mirror.
sub _is_dot { my ($dist) = @_; return substr($dist->id // '', -1) eq '.' }

# ---- the index CPAN.pm resolved with ----------------------------------

our %index;          # package => distribution path (A/AB/ID/File), from the 02packages that verified
our $index_state;    # undef: not read yet; 'ok'; or why not
our $index_code = EXIT_NOT_VERIFIED;    # what "why not" is: refused (1) or could not check (2)

# _verified_index reads, once, the 02packages CPAN.pm used and verifies
# it. CPAN.pm may resolve from its own parse (or its Metadata cache); the
# plugin keeps its own parse of the verified bytes and holds every
# distribution to it.
sub _verified_index {
    return $index_state if defined $index_state;
    my $mirror = _mirror();
    my $path = 'modules/02packages.details.txt.gz';
    my @where = (File::Spec->catfile($CPAN::Config->{keep_source_where} // '', split m{/}, $path));
    unshift @where, File::Spec->catfile($1, split m{/}, $path) if ($mirror // '') =~ m{\Afile://(/.*)\z};
    my ($file) = grep { -f } @where;
    unless (defined $mirror) {
        CPAN::TLog::Cpanm::_problem(EXIT_USAGE, $path, 'could not check: CPAN.pm has no urllist (o conf urllist push URL)');
        $index_code = EXIT_USAGE;
        return $index_state = 'CPAN.pm has no urllist';
    }
    unless (defined $file) {
        CPAN::TLog::Cpanm::_problem(EXIT_USAGE, $path, 'could not check: CPAN.pm did not keep the index it read (looked in ' . join(', ', @where) . ')');
        $index_code = EXIT_USAGE;
        return $index_state = 'the index CPAN.pm read was not found';
    }
    my $before = @CPAN::TLog::Cpanm::problems;
    my $text = CPAN::TLog::Cpanm::verified_index(undef, $file, $mirror);
    unless (defined $text) {
        # Could not check the index (no policy, log unreachable) is not a
        # refusal of what depends on it.
        my @new = @CPAN::TLog::Cpanm::problems[$before .. $#CPAN::TLog::Cpanm::problems];
        $index_code = EXIT_USAGE if @new && !grep { $_->[0] != EXIT_USAGE } @new;
        return $index_state = ($index_code == EXIT_USAGE ? "the index ($path) could not be checked against the log" : "the index ($path) did not verify against the log");
    }
    my $body = 0;
    for my $line (split /\n/, $text) {
        if (!$body) { $body = 1 if $line eq ''; next }
        my ($pkg, undef, $dist) = split ' ', $line;
        $index{$pkg} = $dist if defined $dist;
    }
    return $index_state = 'ok';
}

# _resolution_ok($dist): a distribution CPAN.pm is about to fetch for a
# module must be the one the verified index names for that module.
sub _resolution_ok {
    my ($dist) = @_;
    my $state = _verified_index();
    return (0, $state) unless $state eq 'ok';
    my $for = $dist->called_for;
    # Asked for by its own path (A/AB/ID/File), not through the index.
    return (1) if !defined $for || $for eq $dist->id || $for =~ m{/};
    my $want = $index{$for};
    return (0, "the verified 02packages does not list $for") unless defined $want;
    return (0, "the verified 02packages gives $for as $want, not " . $dist->id) unless $want eq $dist->id;
    return (1);
}

# ---- the gates --------------------------------------------------------

# The archive, where it arrives: verified, and its sha256 kept with the
# distribution.
sub _arrived {
    my ($dist) = @_;
    delete $dist->{cpantlog_sha};
    my $file = $dist->{localfile};
    my $id = $dist->id;
    my ($ok, $why) = _resolution_ok($dist);
    unless ($ok) {
        my $code = $index_state eq 'ok' ? EXIT_NOT_VERIFIED : $index_code;
        CPAN::TLog::Cpanm::_problem($code, "authors/id/$id", "not used for " . ($dist->called_for // $id) . ": $why");
        return;
    }
    return unless defined $file;
    my $mirror = _mirror() // '';
    my ($verdict, $bytes, $sha) = CPAN::TLog::Cpanm::arrive(undef, $file, "$mirror/authors/id/$id") or return;
    # What CPAN.pm unpacks from here on is a private copy of the bytes that
    # verified: a file:// mirror's own file can change after the check.
    $dist->{localfile} = CPAN::TLog::Cpanm::private_copy($bytes, $file, $sha);
    $dist->{cpantlog_sha} = $sha;
    $dist->{cpantlog_verdict} = $verdict;
}

# _refuse marks every later phase as failed with the reason: CPAN.pm then
# says "Could not make" and nothing of it runs.
sub _refuse {
    my ($dist, $why) = @_;
    my $st = _status($why);
    $dist->{$_} = $st for qw(unwrapped writemakefile make make_test install);
    return;
}

my %wrapped;
sub _wrap { _wrap_in('CPAN::Distribution', @_) }
sub _wrap_in {
    my ($pkg, $name, $code) = @_;
    no strict 'refs';
    no warnings 'redefine';
    return if $wrapped{"${pkg}::$name"}++;
    my $orig = \&{"${pkg}::$name"};
    *{"${pkg}::$name"} = sub { $code->($orig, @_) };
}

sub _install_gates {
    return unless defined &CPAN::Distribution::get;

    # Where the bytes arrive.
    _wrap(get_file_onto_local_disk => sub {
        my ($orig, $dist, @rest) = @_;
        my @r = $orig->($dist, @rest);
        _arrived($dist) unless _is_dot($dist);
        return wantarray ? @r : $r[0];
    });

    # Unpack only bytes that hash, now, to what verified.
    _wrap(run_preps_on_packagedir => sub {
        my ($orig, $dist, @rest) = @_;
        return $orig->($dist, @rest) if _is_dot($dist);
        my $sha = $dist->{cpantlog_sha};
        my $now = defined $dist->{localfile} ? CPAN::TLog::Cpanm::_slurp($dist->{localfile}) : undef;
        unless (defined $sha && defined $now && Digest::SHA::sha256_hex($now) eq $sha) {
            my $why = defined $sha ? 'the archive changed after it verified' : 'the archive did not verify against the log';
            CPAN::TLog::Cpanm::_problem(EXIT_NOT_VERIFIED, 'authors/id/' . $dist->id, "not unpacked: $why") if defined $sha;
            _refuse($dist, "$why: authors/id/" . $dist->id);
            _say("cpan-tlog: not unpacking authors/id/" . $dist->id . ": $why");
            return;
        }
        my @r = $orig->($dist, @rest);
        CPAN::TLog::Cpanm::record_tree($r[0], $dist->{cpantlog_verdict} eq 'verified' ? $sha : $dist->{cpantlog_verdict}) if defined $r[0] && -d $r[0];
        return wantarray ? @r : $r[0];
    });

    # clean and cvs_import run make or copy the tree: only in trees that
    # verified, never by refetching.
    for my $step (qw(clean cvs_import)) {
        _wrap($step => sub {
            my ($orig, $dist, @rest) = @_;
            my $dir = $dist->{build_dir};
            if (defined $dir && !CPAN::TLog::Cpanm::tree_verdict($dir)) {
                CPAN::TLog::Cpanm::_problem(EXIT_NOT_VERIFIED, $dir, "not running $step: the tree was not unpacked from a verified archive in this session");
                return;
            }
            return $orig->($dist, @rest);
        });
    }

    # Patches from distroprefs change a tree after it verified: each must
    # be named in CPANTLOG_NOVERIFY.
    _wrap(patch => sub {
        my ($orig, $dist, @rest) = @_;
        my $patches = eval { $dist->prefs->{patches} } || [];
        for my $patch (@$patches) {
            my $subject = $patch =~ m{\A/} ? $patch : do {
                (my $norm = $patch) =~ s{\A([A-Z])([A-Z])([-A-Z0-9]*/)}{$1/$1$2/$1$2$3};
                "authors/id/$norm";
            };
            my $pattern = CPAN::TLog::Cpanm::exempt_by($subject);
            unless ($pattern) {
                CPAN::TLog::Cpanm::_problem(EXIT_NOT_VERIFIED, $subject, 'a distroprefs patch for ' . $dist->id . ' is not verified by the log: not applied, and the distribution is not built; to allow it, name it in CPANTLOG_NOVERIFY');
                _refuse($dist, "distroprefs patch $subject is not verified");
                return 0;
            }
            CPAN::TLog::Cpanm::_record_exempt($subject, $pattern);
        }
        return $orig->($dist, @rest);
    });

    # Every step that runs code of the distribution, and look.
    for my $step (qw(prepare make test install look)) {
        _wrap($step => sub {
            my ($orig, $dist, @rest) = @_;
            my $dir = $dist->{build_dir};
            if (_is_dot($dist)) {
                my $where = Cwd::abs_path($dir // '.');
                my $pattern = CPAN::TLog::Cpanm::exempt_by($where);
                unless ($pattern) {
                    CPAN::TLog::Cpanm::_problem(EXIT_NOT_VERIFIED, $where, "not running $step: a local directory is not a CPAN file, the log cannot vouch for it; to allow it, name it in CPANTLOG_NOVERIFY");
                    return _refuse($dist, "local directory $where is not verified");
                }
                CPAN::TLog::Cpanm::_record_exempt($where, $pattern);
            } elsif (defined $dir && !CPAN::TLog::Cpanm::tree_verdict($dir)) {
                # A tree this session did not unpack from verified bytes
                # (build_dir_reuse, force): forgotten, so that CPAN.pm
                # fetches and verifies the archive again.
                _say("cpan-tlog: not using $dir (not unpacked from a verified archive in this session): fetching " . $dist->id . ' again');
                $dist->force('get');
                delete $dist->{$_} for qw(unwrapped writemakefile make make_test install localfile cpantlog_sha);
            }
            return $orig->($dist, @rest);
        });
    }
}
# ---- CPAN.pm's own downloads -------------------------------------------

# _pushy: CPAN.pm's pushy_https is on (its default): it then fetches
# everything from https://cpan.org, whatever urllist says.
sub _pushy { my $ph = $CPAN::Config && $CPAN::Config->{pushy_https}; return !defined $ph || $ph }

# _urllist_ignored: the mirrors of urllist CPAN.pm ignores now (all but
# https://cpan.org itself), or ().
sub _urllist_ignored {
    return () unless $CPAN::Config && _pushy();
    return grep { !m{\Ahttps://(?:www\.)?cpan\.org/?\z} } @{ $CPAN::Config->{urllist} || [] };
}

# _say_pushy says once, as CPAN.pm starts to download (or at the first
# hook), what it does with the urllist and the setting a mirror needs.
my $said_pushy;
sub _say_pushy {
    return if $said_pushy;
    my @ignored = _urllist_ignored() or return;
    $said_pushy = 1;
    _say("cpan-tlog: CPAN.pm's pushy_https is on, so it ignores your urllist (" . join(', ', @ignored) . ") and downloads from https://cpan.org; "
        . "what arrives is verified against the log either way. To use your mirror: o conf pushy_https 0, then o conf commit");
}

# The index files CPAN.pm must have to resolve anything.
my %CPAN_INDEX = map { $_ => 1 } qw(authors/01mailrc.txt.gz modules/02packages.details.txt.gz);

sub _install_ftp_gate {
    return unless defined &CPAN::FTP::localize;
    _wrap_in('CPAN::FTP', localize => sub {
        my ($orig, $self, $file, @rest) = @_;
        _say_pushy();
        my @r = $orig->($self, $file, @rest);
        if (!$r[0] && defined $file && $CPAN_INDEX{$file} && !$ENV{CPANTLOG_EXEC_CHECK}) {
            # CPAN.pm carries on without it ("Could not expand") and
            # exits 0: nothing was checked, and the summary says so.
            # (Under cpantlog exec, exec's proxy saw the fetch and says.)
            my @ignored = _urllist_ignored();
            CPAN::TLog::Cpanm::_problem(EXIT_USAGE, $file, 'could not check: CPAN.pm could not fetch it'
                . (@ignored ? ' from https://cpan.org (pushy_https is on, so your urllist ' . join(', ', @ignored) . ' is not used: o conf pushy_https 0, then o conf commit)' : ''));
        }
        return wantarray ? @r : $r[0];
    });
}

# Loaded by CPAN.pm at its first hook, CPAN::Distribution and CPAN::FTP
# are there; loaded earlier (perl -MCPAN::Plugin::TLog, as cpantlog exec
# does), the gates go in as each loads.
my %installer = ('CPAN/Distribution.pm' => \&_install_gates, 'CPAN/FTP.pm' => \&_install_ftp_gate);
my %pending;
for my $file (sort keys %installer) {
    if ($INC{$file}) { $installer{$file}->() } else { $pending{$file} = 1 }
}
if (%pending) {
    unshift @INC, sub {
        my ($me, $file) = @_;
        return unless delete $pending{$file};
        # The real module loads (this hook stepped aside), then its gates
        # go in.
        @INC = grep { !ref $_ || $_ != $me } @INC;
        require $file;
        $installer{$file}->();
        # What loaded with it, without this hook.
        for my $also (grep { $INC{$_} } sort keys %pending) {
            delete $pending{$also};
            $installer{$also}->();
        }
        unshift @INC, $me if %pending;
        my $src = "1;\n";
        open my $fh, '<', \$src;
        return $fh;
    };
}

# At the first hook, said if CPAN.pm downloaded nothing through the gate.
_say_pushy() if $CPAN::Config;

# A policy that cannot be read means nothing can be checked: said now.
CPAN::TLog::Cpanm::_problem(EXIT_USAGE, CPAN::TLog::Cpanm::policy_file(), CPAN::TLog::Cpanm::policy_error())
    unless CPAN::TLog::Cpanm::_policy();

# The hooks CPAN.pm calls: the gates are already in place (installed when
# CPAN.pm loaded this module, at the first hook); the index is checked at
# the first distribution.
sub pre_get { _verified_index(); return }

1;

__END__

=head1 NAME

CPAN::Plugin::TLog - CPAN.pm builds only what the cpan-tlog log verified

=head1 SYNOPSIS

  cpan> o conf plugin_list push CPAN::Plugin::TLog
  cpan> o conf pushy_https 0          # only if urllist names your mirror
  cpan> o conf commit

With CPAN.pm's default C<pushy_https> (on), CPAN.pm ignores C<urllist>
and fetches everything from https://cpan.org; set it to 0 to use the
mirror C<urllist> names (a C<file://> or C<http://> mirror is safe with
the plugin: what arrives is verified against the log).

=head1 DESCRIPTION

A CPAN.pm plugin (CPAN.pm 2.07 or later). Once loaded (at the first
distribution CPAN.pm works on) it puts gates into CPAN.pm:

=over

=item *

where an archive arrives (CPAN.pm's C<get>), it is verified against the
cpan-tlog log (L<CPAN::TLog::Verify>), with its c2sp.org/tlog-proof from
the first mirror of C<urllist> (C<tlog/proofs/...>), else from the log named
in the policy;

=item *

the 02packages CPAN.pm resolved with must verify (logged, and not older
than C<CPANTLOG_MAX_INDEX_LAG>, default 24h), and each distribution
fetched for a module must be the one that verified 02packages names for it
(CPAN.pm's own parse and its Metadata cache are not trusted);

=item *

the archive is unpacked only if its bytes still hash to what verified, and
C<Makefile.PL>/C<Build.PL>, make, test, install and C<look> run only in a
tree unpacked so in this session. A build directory from an earlier
session (C<build_dir_reuse>) is fetched and verified again; a local
directory (C<cpan .>) is refused unless C<CPANTLOG_NOVERIFY> names it.
C<force> changes none of this. C<clean> runs only in such trees; a patch
from distroprefs is applied only when C<CPANTLOG_NOVERIFY> names it.

=back

At exit it prints one line (verified, refused, could not be checked,
exempt) and each file that did not verify; the exit status of C<cpan> is
then 1 (refused), 3 (security error) or 2 (could not check), whatever
CPAN.pm would have returned.

The policy is C<$CPANTLOG_POLICY>, else C<~/.config/cpantlog/policy> (the
cpantlog format). With CPAN.pm's default C<pushy_https>, CPAN.pm fetches
from https://cpan.org whatever C<urllist> says; the plugin verifies what
arrives all the same, takes proofs from the log, and says that C<urllist>
is ignored and the setting to change. Loaded at start (below), it says
so before CPAN.pm's first download, and an index CPAN.pm could not fetch
(no network to cpan.org, say) is listed as could not be checked, exit 2,
where CPAN.pm alone says "Could not expand" and exits 0. From
C<plugin_list> only, CPAN.pm calls the plugin at its first distribution,
after it has fetched its index: if that failed there is no distribution,
and the plugin never runs.

CPAN.pm loads a plugin at its first get, make, test or install: C<look>
or C<clean> as the first command of a session with C<build_dir_reuse> run
before the gates exist. To have them in place before CPAN.pm does anything
at all, load the plugin with perl: C<PERL5OPT=-MCPAN::Plugin::TLog cpan
...> (C<cpantlog exec> does this).

=cut

=head1 LICENSE

This software is copyright (c) 2026 by the cpan-tlog developers.

This is free software; you can redistribute it and/or modify it under
the same terms as the Perl 5 programming language system itself.

=cut
