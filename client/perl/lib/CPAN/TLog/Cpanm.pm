package CPAN::TLog::Cpanm;

# CPAN::TLog::Cpanm - verify every archive and index file cpanm uses
# against cpan-tlog, from inside cpanm. cpanm-tlog loads it into the user's
# own cpanm (perl -MCPAN::TLog::Cpanm cpanm ...). See the POD at the end.

use strict;
use warnings;
use Digest::SHA ();
use Carp ();
use File::Spec ();
use HTTP::Tiny;
use CPAN::TLog::Verify qw(verify_file parse_policy EXIT_OK EXIT_NOT_VERIFIED EXIT_USAGE EXIT_SECURITY);

our $VERSION = '1.00';

# What was refused or could not be checked, for the summary and the exit
# status: [ code, path, reason ].
our @problems;
our $verified = 0;

my $policy_text;
my $policy;

# use_policy($text) sets the policy from its text (tests, and callers that
# read it themselves).
sub use_policy { $policy = parse_policy($_[0]) }

sub _policy {
    return $policy if $policy;
    my $file = $ENV{CPANTLOG_POLICY} || (($ENV{HOME} // '') . '/.cpantlog/policy');
    open my $fh, '<', $file or die "cpanm-tlog: cannot read the trust policy $file: $! (write one, or set CPANTLOG_POLICY)\n";
    local $/;
    $policy_text = <$fh>;
    $policy = parse_policy($policy_text);
    return $policy;
}

# _state_dir: where the checkpoints seen are kept (fork detection).
sub _state_dir { $ENV{CPANTLOG_STATE} || (($ENV{HOME} // '.') . '/.cpantlog') }

# The proof's name for a CPAN path: per content for index files and files
# PAUSE lets be replaced, as the log's proof tree names them.
my %INDEX = map { $_ => 1 } qw(modules/02packages.details.txt.gz modules/02packages.details.txt
    modules/06perms.txt.gz modules/06perms.txt authors/01mailrc.txt.gz);

sub _may_overwrite { $_[0] =~ /(?:readme|\.(?:html|txt|mkdn|md|xml|yml|json|pdf|rdf|pod))(?:\.gz|\.bz2)?\z/i }

sub proof_path {
    my ($path, $sha256_hex) = @_;
    return "tlog/proofs/$path.$sha256_hex.tlog-proof" if $INDEX{$path} || _may_overwrite($path);
    return "tlog/proofs/$path.tlog-proof";
}

my $http = HTTP::Tiny->new(timeout => 30, max_redirect => 0, max_size => 64 * 1024, agent => "cpanm-tlog/$VERSION");

# _get(URL): the body, or undef (and why) when there is none.
sub _get {
    my ($url) = @_;
    if ($url =~ m{\Afile://(/.*)\z}) {
        open my $fh, '<:raw', $1 or return (undef, "no file $1");
        local $/;
        return (scalar <$fh>, undef);
    }
    my $res = $http->get($url);
    return ($res->{content}, undef) if $res->{status} == 200;
    return (undef, $res->{status} == 599 ? "unreachable: $res->{content}" : "answered $res->{status}");
}

sub _max_lag {
    my $v = $ENV{CPANTLOG_MAX_INDEX_LAG} // '24h';
    my ($n, $u) = $v =~ /\A(\d+)([smhd]?)\z/ or die "cpanm-tlog: CPANTLOG_MAX_INDEX_LAG=$v is not a duration like 24h\n";
    return $n * { '' => 1, s => 1, m => 60, h => 3600, d => 86400 }->{$u};
}

sub _epoch {
    my ($t) = @_;
    my ($y, $mo, $d, $h, $mi, $s) = $t =~ /\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z\z/ or return undef;
    require Time::Local;
    return Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y);
}

# verify_bytes($mirror_base, $path, $bytes): checks a file against the
# log, with the mirror's proof, else the log's (the policy's log URL). It
# returns (EXIT_OK) or (code, reason). A mirror proof that fails is never
# trusted: the log is asked; with the log unreachable the answer is "could
# not check" (2), unless a proof that verifies shows another file logged
# at this path (1).
sub verify_bytes {
    my ($base, $path, $bytes) = @_;
    my $p = _policy();
    my $sha = Digest::SHA::sha256_hex($bytes);
    my $name = proof_path($path, $sha);
    my ($log_url) = map { $_->{url} } grep { defined $_->{url} } @{ $p->{logs} };
    my $mirror_why = 'no proof on the mirror';
    # The mirror's proof first: no contact with the log.
    my ($proof, $why) = _get("$base/$name");
    if (defined $proof) {
        my ($code, $msg) = _verify($p, $path, $proof, $bytes);
        return (EXIT_OK) if $code == EXIT_OK;
        # The bytes contradict a proof that verified, of a path that never
        # changes: that stands without the log. A bad signature by a
        # trusted key is evidence too.
        return ($code, $msg) if $code == EXIT_SECURITY || $msg =~ /does not match the log/ && !$INDEX{$path} && !_may_overwrite($path);
        $mirror_why = "the mirror's proof does not verify ($msg)";
    }
    # Then the log, which the policy names.
    return (EXIT_USAGE, "could not check: $mirror_why, and the policy names no log URL to ask") unless defined $log_url;
    ($proof, $why) = _get("$log_url/$name");
    if (!defined $proof) {
        return (EXIT_NOT_VERIFIED, "$mirror_why, and the log has no proof of these bytes (not logged, or logged minutes ago: retry later)") if $why eq 'answered 404';
        return (EXIT_USAGE, "could not check: $mirror_why, and the log could not be asked ($why)");
    }
    return _verify($p, $path, $proof, $bytes);
}

# _verify checks one proof, with the freshness rules for index files and
# files PAUSE lets be replaced. It returns (code, message).
sub _verify {
    my ($p, $path, $proof, $bytes) = @_;
    my $r = eval { verify_file(policy => $p, proof => $proof, file => $bytes, path => $path, state => _state_dir()) };
    if (my $err = $@) {
        return (ref $err ? ($err->{code}, $err->{message}) : (EXIT_USAGE, "$err"));
    }
    if ($INDEX{$path} || _may_overwrite($path)) {
        my $at = _epoch($r->{time});
        return (EXIT_NOT_VERIFIED, "$path: the version served was logged with a time in the future ($r->{time})") if $at > time + 300;
        my $lag = _max_lag();
        return (EXIT_NOT_VERIFIED, sprintf("%s is stale: the version served was logged at %s, more than %ds ago (CPANTLOG_MAX_INDEX_LAG); the mirror may be frozen: use another", $path, $r->{time}, $lag))
            if time - $at > $lag;
    }
    return (EXIT_OK);
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    return scalar <$fh>;
}

# _check($cpanm, $file, $uri[, $index_path]): verifies a file cpanm is
# about to use, fetched from $uri (an index file: $index_path, below the
# mirror $uri), and tells cpanm why not.
sub _check {
    my ($self, $file, $uri, $index_path) = @_;
    my ($base, $path);
    if ($index_path) {
        ($base, $path) = ($uri, $index_path);
    } else {
        ($base, $path) = ($uri // '') =~ m{\A(.*?)/?(authors/id/[A-Z]/[A-Z0-9-]{2}/[A-Z][A-Z0-9-]+/.+)\z};
    }
    unless (defined $path) {
        push @problems, [ EXIT_NOT_VERIFIED, $uri // $file, 'not from a CPAN author directory: cpan-tlog cannot vouch for it' ];
        $self->diag_fail("cpanm-tlog: REFUSED $file: not from a CPAN author directory (cpan-tlog cannot vouch for it)");
        return 0;
    }
    my $bytes = _slurp($file);
    my ($code, $why) = defined $bytes ? verify_bytes($base, $path, $bytes) : (EXIT_USAGE, "cannot read $file");
    if ($code == EXIT_OK) {
        $verified++;
        $self->chat("cpanm-tlog: verified $path against the log\n") if ref $self && $self->can('chat');
        return 1;
    }
    push @problems, [ $code, $path, $why ];
    my $msg = ($code == EXIT_USAGE ? "cpanm-tlog: COULD NOT CHECK $path: " : "cpanm-tlog: REFUSED $path: ") . $why;
    if (ref $self && $self->can('diag_fail')) { $self->diag_fail($msg) } else { print STDERR "$msg\n" }
    return 0;
}

# wrap installs the hooks into a loaded cpanm (App::cpanminus::script) or
# Menlo (Carton's): every archive is checked before it is unpacked, and the
# mirror's 02packages before cpanm reads it.
sub wrap {
    no strict 'refs';
    no warnings qw(redefine once);
    for my $class (qw(App::cpanminus::script Menlo::CLI::Compat)) {
        next unless defined &{"${class}::unpack"};
        next if ${"${class}::CPANTLOG_WRAPPED"}++;
        my $unpack = \&{"${class}::unpack"};
        *{"${class}::unpack"} = sub {
            my ($self, $file, $uri) = @_;
            return unless _check($self, $file, $uri);
            goto &$unpack;
        };
        if (defined &{"${class}::generate_mirror_index"}) {
            my $gen = \&{"${class}::generate_mirror_index"};
            *{"${class}::generate_mirror_index"} = sub {
                my ($self, $mirror) = @_;
                my $gz = $self->package_index_for($mirror) . '.gz';
                (my $base = $mirror) =~ s{/+\z}{};
                $base = "file://$base" if $base =~ m{\A/};
                return unless _check($self, $gz, $base, 'modules/02packages.details.txt.gz');
                goto &$gen;
            };
        }
    }
    # Menlo (Carton) reads the mirror's 02packages through its own index.
    if (defined &Menlo::Index::Mirror::refresh_index && !$Menlo::Index::Mirror::CPANTLOG_WRAPPED++) {
        my $refresh = \&Menlo::Index::Mirror::refresh_index;
        *Menlo::Index::Mirror::refresh_index = sub {
            my ($index) = @_;
            my @r = $refresh->(@_);
            my $gz = File::Spec->catfile($index->cache, '02packages.details.txt.gz');
            (my $base = $index->mirror) =~ s{/+\z}{};
            $base = "file://$base" if $base =~ m{\A/};
            unless (-f $gz && _check(undef, $gz, $base, 'modules/02packages.details.txt.gz')) {
                (my $txt = $gz) =~ s/\.gz\z//;
                unlink $txt;
                Carp::croak("cpanm-tlog: the mirror's 02packages did not verify against cpan-tlog; nothing is resolved from it");
            }
            return @r;
        };
    }
}

# Carton loads Menlo while it runs, after INIT: an @INC hook loads each of
# the modules the hooks wrap, then wraps them.
my %hooked = map { $_ => 1 } qw(App/cpanminus/script.pm Menlo/CLI/Compat.pm Menlo/Index/Mirror.pm);
unshift @INC, sub {
    my ($me, $file) = @_;
    return unless delete $hooked{$file};
    local @INC = grep { !ref $_ || $_ != $me } @INC;
    require $file;
    wrap();
    my $src = "1;\n";
    open my $fh, '<', \$src;
    return $fh;
};

# Loaded with perl -M before cpanm's script compiles: wrap once the script
# (and the modules it uses) is compiled. The @INC hook above covers what is
# loaded later; INIT covers a fat-packed cpanm, whose own @INC hook serves
# its modules before ours. (Loaded later, as by CPAN.pm's plugin, there is
# nothing of cpanm to wrap.)
if (${^GLOBAL_PHASE} eq 'START') {
    eval 'INIT { CPAN::TLog::Cpanm::wrap() } 1' or die $@;
}

END {
    return unless @problems;
    my $code = 0;
    print STDERR "cpanm-tlog: $verified files verified against the log; these were not:\n";
    for my $p (@problems) {
        my ($c, $path, $why) = @$p;
        printf STDERR "  %-9s %s\n            %s\n", ($c == EXIT_USAGE ? 'UNCHECKED' : 'REFUSED'), $path, $why;
        # Refused (1, or 3 for a security error) beats could not check (2).
        $code = $c if $c != EXIT_USAGE && ($code == 0 || $code == EXIT_USAGE || $c > $code);
        $code ||= $c;
    }
    $? = $code;
}

1;

__END__

=head1 NAME

CPAN::TLog::Cpanm - cpanm's hook for cpanm-tlog: verify before unpacking

=head1 DESCRIPTION

Loaded into cpanm by L<cpanm-tlog>, it wraps the one method every archive
goes through before it is built (C<unpack>, in App::cpanminus::script and
in Menlo::CLI::Compat) and the one that reads the mirror's 02packages
(C<generate_mirror_index>): each file is verified against the cpan-tlog
log with L<CPAN::TLog::Verify> before cpanm uses it. A file that does not
verify is not unpacked (cpanm reports that distribution as failed) and is
listed at exit; the exit status is then 1 (refused), 3 (security error)
or 2 (could not check).

=cut
