package CPAN::TLog::Cpanm;

# CPAN::TLog::Cpanm - the gate every CPAN client goes through: verify
# each archive and index file where its bytes arrive, and let the client
# unpack, configure, build, test, install or look only at what came from
# bytes that verified. cpanm-tlog and carton-tlog load it into cpanm and
# Carton's Menlo; CPAN::Plugin::TLog uses the same records for CPAN.pm.
# See the POD at the end.

# Run by cpanm-tlog or carton-tlog, the user's PERL5LIB is searched
# after perl's own directories, so that it cannot shadow a module the hook
# relies on (File::Temp, Digest::SHA, ...) with one that unwraps it; the
# clients' child processes get it back unchanged.
BEGIN {
    if (defined(my $user = delete $ENV{CPANTLOG_USER_PERL5LIB})) {
        push @INC, grep { length } split /:/, $user;
        $ENV{PERL5LIB} = $user if length $user;
    }
}

use strict;
use warnings;
use Digest::SHA ();
use Carp ();
use Cwd ();
use File::Spec ();
use File::Temp ();
use HTTP::Tiny;
use CPAN::TLog::Verify qw(verify_file parse_policy EXIT_OK EXIT_NOT_VERIFIED EXIT_USAGE EXIT_SECURITY);

our $VERSION = '1.00';

# What happened to each file, for the summary and the exit status.
our @problems;          # [ code, what, reason ], each refusal once
our $verified = 0;      # distinct files that verified
our @exempt;            # [ what, pattern ]

# The records every later use is checked against.
our %verified_sha;      # sha256 hex => CPAN path whose logged bytes these are
our %trees;             # absolute directory => 'sha256 hex' or 'exempt PATTERN'
our %index_text;        # absolute file => [dev, ino, size, mtime] of the index text we wrote
our %allowed_index;     # absolute file => why (Carton's index written from cpanfile.snapshot)

my %seen_problem;
my %seen_ok;
my $policy;
my $policy_error;

# The tool that speaks: cpanm-tlog, carton-tlog or CPAN::Plugin::TLog.
sub label { $ENV{CPANTLOG_TOOL} || 'cpanm-tlog' }

# use_policy($text) sets the policy from its text (tests, and callers that
# read it themselves).
sub policy_error { $policy_error }
sub use_policy { $policy = parse_policy($_[0]); $policy_error = undef }

# policy_file: $CPANTLOG_POLICY, else ~/.config/cpantlog/policy (the Go
# tools' default), else the old ~/.cpantlog/policy with a notice.
sub policy_file {
    return $ENV{CPANTLOG_POLICY} if $ENV{CPANTLOG_POLICY};
    my $home = $ENV{HOME} // '';
    my $config = $ENV{XDG_CONFIG_HOME} || "$home/.config";
    my $new = "$config/cpantlog/policy";
    return $new if -e $new;
    my $old = "$home/.cpantlog/policy";
    if (-e $old) {
        print STDERR label() . ": reading the policy from $old; move it to $new, where every cpantlog tool looks\n";
        return $old;
    }
    return $new;
}

# _policy returns the parsed policy, or undef with $policy_error set: a
# missing or broken policy means nothing can be checked (2), never that
# files pass.
sub _policy {
    return $policy if $policy;
    return undef if defined $policy_error;
    my $file = policy_file();
    my $fh;
    unless (open $fh, '<', $file) {
        $policy_error = "cannot read the trust policy $file: $! (write one with the log's 'log', 'witness', 'group' and 'quorum' lines, or set CPANTLOG_POLICY)";
        return undef;
    }
    local $/;
    my $text = <$fh>;
    $policy = eval { parse_policy($text) };
    unless ($policy) {
        my $err = $@;
        $policy_error = "the trust policy $file is not valid: " . (ref $err ? $err->{message} : "$err");
        $policy_error =~ s/\s+\z//;
    }
    return $policy;
}

# _state_dir: the trusted state the Go tools keep, and as they keep it
# (CPAN::TLog::Verify FILES): $CPANTLOG_STATE, else
# $XDG_STATE_HOME/cpantlog, else ~/.local/state/cpantlog.
sub _state_dir {
    return $ENV{CPANTLOG_STATE} if $ENV{CPANTLOG_STATE};
    return "$ENV{XDG_STATE_HOME}/cpantlog" if $ENV{XDG_STATE_HOME};
    return (($ENV{HOME} // '.') . '/.local/state/cpantlog');
}

# _synced_log($policy): once per run, the log's latest checkpoint advances
# the trusted state the Go tools share (CPAN::TLog::Verify::sync_with_log:
# a rollback or a fork dies, exit 3); then the log's URL, so that each
# proof's checkpoint is proven consistent with it. With the log out of
# reach (proofs from a mirror, offline), undef: proofs are held to the
# trusted state offline.
# The log is the one the proof's checkpoint names ($origin): across a
# log-key rotation the policy carries two.
my %synced;
sub _synced_log {
    my ($p, $origin) = @_;
    my $dir = _state_dir();
    return $synced{$dir}{$origin}[0] if $synced{$dir}{$origin};
    my ($url) = CPAN::TLog::Verify::sync_with_log($p, $dir, timeout => 10, origin => $origin);
    $synced{$dir}{$origin} = [$url];
    return $url;
}

# The proof's name for a CPAN path: per content for index files and files
# PAUSE lets be replaced, as the log's proof tree names them.
our %INDEX = map { $_ => 1 } qw(modules/02packages.details.txt.gz modules/02packages.details.txt
    modules/06perms.txt.gz modules/06perms.txt authors/01mailrc.txt.gz);

sub _may_overwrite { $_[0] =~ /(?:readme|\.(?:html|txt|mkdn|md|xml|yml|json|pdf|rdf|pod))(?:\.gz|\.bz2)?\z/i }

sub proof_path {
    my ($path, $sha256_hex) = @_;
    return "tlog/proofs/$path.$sha256_hex.tlog-proof" if $INDEX{$path} || _may_overwrite($path);
    return "tlog/proofs/$path.tlog-proof";
}

# A proof is at most 144 KiB (16 signatures of 5 kB, as CPAN::TLog::Verify
# and the Go client bound it); past that it is not read.
use constant MAX_PROOF => 144 * 1024;
my $http = HTTP::Tiny->new(timeout => 30, max_redirect => 0, max_size => MAX_PROOF, agent => "cpanm-tlog/$VERSION");

# _get(URL): the body, or undef (and why) when there is none.
sub _get {
    my ($url) = @_;
    if ($url =~ m{\Afile://(/.*)\z}) {
        open my $fh, '<:raw', $1 or return (undef, "no file $1");
        my $n = read $fh, my $b, MAX_PROOF + 1;
        return (undef, "cannot read $1: $!") unless defined $n;
        return (undef, "$1 is larger than a proof can be") if $n > MAX_PROOF;
        return ($b, undef);
    }
    my $res = $http->get($url);
    return ($res->{content}, undef) if $res->{status} == 200;
    return (undef, $res->{status} == 599 ? "unreachable: $res->{content}" : "answered $res->{status}");
}

sub _max_lag {
    my $v = $ENV{CPANTLOG_MAX_INDEX_LAG} // '24h';
    my ($n, $u) = $v =~ /\A(\d+)([smhd]?)\z/ or return undef;
    return $n * { '' => 1, s => 1, m => 60, h => 3600, d => 86400 }->{$u};
}

sub _epoch {
    my ($t) = @_;
    my ($y, $mo, $d, $h, $mi, $s) = ($t // '') =~ /\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z\z/ or return undef;
    require Time::Local;
    return Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y);
}

# verify_bytes($mirror_base, $path, $bytes): checks a file against the
# log, with the mirror's proof, else the log's (the policy's log URL). It
# returns (EXIT_OK) or (code, reason). A mirror proof that fails is never
# trusted: the log is asked; with the log unreachable the answer is "could
# not check" (2), unless a proof that verifies shows another file logged
# at this path (1). Under cpantlog exec the exec's verifying proxy decides.
sub verify_bytes {
    my ($base, $path, $bytes) = @_;
    return _exec_check($path, $bytes) if $ENV{CPANTLOG_EXEC_CHECK};
    my $p = _policy() or return (EXIT_USAGE, "could not check: $policy_error");
    my $sha = Digest::SHA::sha256_hex($bytes);
    my $name = proof_path($path, $sha);
    my ($log_url) = map { $_->{url} } grep { defined $_->{url} } @{ $p->{logs} };
    my $mirror_why = 'no proof on the mirror';
    # The mirror's proof first: no contact with the log.
    if (defined $base && length $base) {
        my ($proof) = _get("$base/$name");
        if (defined $proof) {
            my ($code, $msg) = _verify($p, $path, $proof, $bytes);
            return (EXIT_OK) if $code == EXIT_OK;
            # The bytes contradict a proof that verified, of a path that
            # never changes: that stands without the log. So does signed
            # evidence against the log.
            return ($code, $msg) if $code == EXIT_SECURITY || $msg =~ /does not match the log/ && !$INDEX{$path} && !_may_overwrite($path);
            # (An ML-DSA-44 cosignature this verifier cannot check is no
            # failure of the proof: it "could not be checked".)
            $mirror_why = $msg =~ /cannot check \(CryptX has no ML-DSA\)/ ? "the mirror's proof could not be checked ($msg)" : "the mirror's proof does not verify ($msg)";
        }
    }
    # Then the log, which the policy names.
    return (EXIT_USAGE, "could not check: $mirror_why, and the policy names no log URL to ask") unless defined $log_url;
    my ($proof, $why) = _get("$log_url/$name");
    if (!defined $proof) {
        return (EXIT_NOT_VERIFIED, "$mirror_why, and the log has no proof of these bytes (not logged, or logged minutes ago: retry later)") if $why eq 'answered 404';
        return (EXIT_USAGE, "could not check: $mirror_why, and the log refused the request ($why)") if $why =~ /\Aanswered 4/;
        return (EXIT_USAGE, "could not check: $mirror_why, and the log could not be asked ($why)");
    }
    return _verify($p, $path, $proof, $bytes);
}

# _exec_check asks cpantlog exec's verifying proxy about these bytes: one
# verifier, one summary, for files that never went through the proxy
# (a file:// or directory mirror, a local file).
my $exec_said;
sub _exec_check {
    my ($path, $bytes) = @_;
    # Set by cpantlog exec for the clients it runs; a setting anyone else
    # left behind must not switch verification off silently: loopback
    # only, and said once.
    return (EXIT_USAGE, "could not check: CPANTLOG_EXEC_CHECK=$ENV{CPANTLOG_EXEC_CHECK} is not cpantlog exec's loopback proxy")
        unless $ENV{CPANTLOG_EXEC_CHECK} =~ m{\Ahttp://127\.0\.0\.1:[0-9]+/\.cpantlog/check\z};
    print STDERR label() . ": files are verified by cpantlog exec's proxy ($ENV{CPANTLOG_EXEC_CHECK})\n" unless $exec_said++;
    my $ua = HTTP::Tiny->new(timeout => 120, max_redirect => 0, max_size => 64 * 1024,
        proxy => undef, http_proxy => undef, https_proxy => undef, agent => "cpanm-tlog/$VERSION");
    my $url = $ENV{CPANTLOG_EXEC_CHECK} . '?path=' . _uri_escape($path);
    my $res = $ua->post($url, { content => $bytes,
        headers => { 'Authorization' => 'Bearer ' . ($ENV{CPANTLOG_EXEC_TOKEN} // ''), 'Content-Type' => 'application/octet-stream' } });
    (my $body = $res->{content} // '') =~ s/\s+\z//;
    return (EXIT_OK) if $res->{status} == 200;
    return (EXIT_NOT_VERIFIED, $body || 'refused by cpantlog exec') if $res->{status} == 403;
    return (EXIT_SECURITY, $body || 'security error') if $res->{status} == 409;
    return (EXIT_USAGE, "could not check: cpantlog exec's proxy answered $res->{status}" . ($body ? ": $body" : ''));
}

sub _uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~\/])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# _verify checks one proof, with the freshness rules for index files and
# files PAUSE lets be replaced. It returns (code, message).
sub _verify {
    my ($p, $path, $proof, $bytes) = @_;
    my $r = eval { verify_file(policy => $p, proof => $proof, file => $bytes, path => $path, state => _state_dir(), log_url => _synced_log($p, CPAN::TLog::Verify::proof_origin($proof))) };
    if (my $err = $@) {
        return (ref $err ? ($err->{code}, $err->{message}) : (EXIT_USAGE, "$err"));
    }
    if ($INDEX{$path} || _may_overwrite($path)) {
        my $at = _epoch($r->{time});
        return (EXIT_NOT_VERIFIED, "$path: the logged time of this version cannot be read") unless defined $at;
        return (EXIT_NOT_VERIFIED, "$path: the version served was logged with a time in the future ($r->{time})") if $at > time + 300;
        my $lag = _max_lag();
        return (EXIT_USAGE, "could not check: CPANTLOG_MAX_INDEX_LAG=$ENV{CPANTLOG_MAX_INDEX_LAG} is not a duration like 24h") unless defined $lag;
        return (EXIT_NOT_VERIFIED, sprintf("%s is stale: the version served was logged at %s, more than %ds ago (CPANTLOG_MAX_INDEX_LAG); the mirror may be frozen: use another", $path, $r->{time}, $lag))
            if time - $at > $lag;
    }
    return (EXIT_OK);
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    my $b = <$fh>;
    return $b // '';
}

# ---- exemptions ------------------------------------------------------

my $noverify;
my $noverify_error;

# exempt_by($subject): the CPANTLOG_NOVERIFY pattern that exempts subject
# (a CPAN path, a URL, an absolute local path), or undef.
sub exempt_by {
    my ($subject) = @_;
    return undef if defined $noverify_error;
    unless ($noverify) {
        return undef unless defined $ENV{CPANTLOG_NOVERIFY} && $ENV{CPANTLOG_NOVERIFY} =~ /\S/;
        $noverify = eval { require CPAN::TLog::NoVerify; CPAN::TLog::NoVerify::from_env() };
        unless ($noverify) {
            my $err = $@;
            $noverify_error = ref $err ? $err->{message} : "$err";
            _problem(EXIT_USAGE, 'CPANTLOG_NOVERIFY', "could not check: $noverify_error");
            return undef;
        }
    }
    return $noverify->match($subject);
}

# _record_exempt lists what a pattern let through; under cpantlog exec it
# tells exec's proxy too, with the file's bytes (when it is a file), so
# that exec's scan knows those bytes as exempt.
sub _record_exempt {
    my ($what, $pattern, $bytes) = @_;
    return if $seen_ok{"exempt $what"}++;
    push @exempt, [ $what, $pattern ];
    if ($ENV{CPANTLOG_EXEC_CHECK} && $ENV{CPANTLOG_EXEC_CHECK} =~ m{\Ahttp://127\.0\.0\.1:[0-9]+/\.cpantlog/check\z}) {
        my $ua = HTTP::Tiny->new(timeout => 30, max_redirect => 0, proxy => undef, http_proxy => undef, https_proxy => undef);
        (my $url = $ENV{CPANTLOG_EXEC_CHECK}) =~ s{/check\z}{/exempt};
        $ua->post("$url?subject=" . _uri_escape($what) . '&pattern=' . _uri_escape($pattern),
            { content => $bytes // '', headers => { 'Authorization' => 'Bearer ' . ($ENV{CPANTLOG_EXEC_TOKEN} // ''), 'Content-Type' => 'application/octet-stream' } });
    }
}

# ---- the records -----------------------------------------------------

# _problem records a refusal (or could not check) once and says it once.
sub _problem {
    my ($code, $what, $why, $self) = @_;
    return if $seen_problem{"$what\0$why"}++;
    push @problems, [ $code, $what, $why ];
    my $msg = label() . ': ' . ($code == EXIT_USAGE ? 'COULD NOT CHECK' : $code == EXIT_SECURITY ? 'SECURITY ERROR' : 'REFUSED') . " $what: $why";
    if (ref $self && $self->can('diag_fail')) { $self->diag_fail($msg) } else { print STDERR "$msg\n" }
}

sub _ok {
    my ($path, $sha, $self) = @_;
    $verified_sha{$sha} = $path;
    return if $seen_ok{$sha}++;
    $verified++;
    $self->chat(label() . ": verified $path against the log\n") if ref $self && $self->can('chat');
}

# cpan_path_of($uri_or_file): (mirror base, CPAN path) for a URL or a
# local path below some authors/id/ tree, else ().
sub cpan_path_of {
    my ($uri) = @_;
    $uri //= '';
    # The path of a URL only: a query or fragment names nothing on CPAN.
    return if $uri =~ m{[?#]} || $uri =~ m{%(?:2[eEfF]|5[cC])|\\};
    my ($base, $path) = $uri =~ m{\A(.*?)(?:\A|/)(authors/id/[A-Z]/[A-Z0-9-]{2}/[A-Z][A-Z0-9-]+/[^\x00-\x20]+)\z} or return;
    return if $path =~ m{(?:\A|/)\.\.?(?:/|\z)|//} || $base =~ m{(?:\A|/)\.\.?(?:/|\z)};
    return ($base, $path);
}

# arrive($self, $file, $uri): the bytes of $file, which the client fetched
# from $uri, where they arrive. It returns (verdict, bytes, sha256 hex)
# with verdict 'verified' or 'exempt PATTERN', or () after recording why
# not. A file from outside authors/id/ has nothing that could vouch for
# it: refused unless exempt.
sub arrive {
    my ($self, $file, $uri, $index_path) = @_;
    my ($base, $path) = defined $index_path ? ($uri, $index_path) : cpan_path_of($uri);
    my $subject = defined $path ? $path : _subject($uri // $file);
    my $bytes = _slurp($file);
    unless (defined $bytes) {
        _problem(EXIT_USAGE, $subject, "could not check: cannot read $file: $!", $self);
        return;
    }
    my $sha = Digest::SHA::sha256_hex($bytes);
    if (!defined $index_path && (my $pattern = exempt_by($subject))) {
        _record_exempt($subject, $pattern, $bytes);
        return ("exempt $pattern", $bytes, $sha);
    }
    unless (defined $path) {
        _problem(EXIT_NOT_VERIFIED, $subject, 'not a file of a CPAN author directory (authors/id/A/AB/ID/...): the log cannot vouch for it; to allow it, name it in CPANTLOG_NOVERIFY', $self);
        return;
    }
    if (($verified_sha{$sha} // '') eq $path) {
        return ('verified', $bytes, $sha);
    }
    my ($code, $why) = verify_bytes($base, $path, $bytes);
    if ($code == EXIT_OK) {
        _ok($path, $sha, $self);
        return ('verified', $bytes, $sha);
    }
    _problem($code, $path, $why, $self);
    return;
}

# _subject names a URL as given, a local path (file:// URLs included)
# absolutely.
sub _subject {
    my ($what) = @_;
    $what = $1 if $what =~ m{\Afile://(/.*)\z} && $1 !~ m{%};
    return $what if $what =~ m{\A[A-Za-z][A-Za-z0-9+.-]*:};
    return Cwd::abs_path($what) // File::Spec->rel2abs($what);
}

my $private;
# private_dir: a directory only this process writes, for the verified
# copies it unpacks and the index text it resolves from.
sub private_dir { $private //= File::Temp::tempdir('cpantlog-XXXXXXXX', TMPDIR => 1, CLEANUP => 1) }

# private_copy($bytes, $name, $sha): a fresh file holding exactly the
# verified bytes, so that what is unpacked is what was verified, whatever
# happens to the client's own copy.
sub private_copy {
    my ($bytes, $name, $sha) = @_;
    my $dir = File::Spec->catdir(private_dir(), $sha);
    mkdir $dir, 0700;
    (my $base = $name) =~ s{.*/}{};
    my $file = File::Spec->catfile($dir, $base);
    open my $fh, '>:raw', $file or die label() . ": cannot write $file: $!\n";
    print {$fh} $bytes;
    close $fh or die label() . ": cannot write $file: $!\n";
    return $file;
}

# record_tree($dir, $how): a tree unpacked from bytes that verified (or
# were exempt); the only trees the client may configure, build, test,
# install or look at.
sub record_tree {
    my ($dir, $how) = @_;
    my $abs = Cwd::abs_path($dir) // return;
    $trees{$abs} = $how;
}

# tree_verdict($dir): how the tree at $dir came to be, or undef when it
# was not unpacked from verified bytes in this run.
sub tree_verdict {
    my ($dir) = @_;
    my $abs = Cwd::abs_path($dir) // return undef;
    return $trees{$abs};
}

# gunzip_strict($bytes): the decompressed text, or undef unless $bytes is
# gzip (a plain-text "index" is refused, not passed through).
sub gunzip_strict {
    my ($bytes) = @_;
    return undef unless substr($bytes, 0, 2) eq "\x1f\x8b";
    require IO::Uncompress::Gunzip;
    my $out;
    IO::Uncompress::Gunzip::gunzip(\$bytes => \$out, Transparent => 0, MultiStream => 1, Strict => 1) or return undef;
    return $out;
}

# write_index_text($file, $text): writes the verified index text to a
# file of our own and records what it looks like, so that a later read
# can tell it is still the one written.
sub write_index_text {
    my ($file, $text) = @_;
    my $tmp = "$file.cpantlog-$$";
    open my $fh, '>:raw', $tmp or return undef;
    print {$fh} $text;
    close $fh or return undef;
    rename $tmp, $file or return undef;
    my @st = stat $file;
    $index_text{ Cwd::abs_path($file) } = [ @st[0, 1, 7, 9] ];
    return 1;
}

# index_ok($file): whether $file is index text written from verified
# bytes and unchanged since (or Carton's index of cpanfile.snapshot).
sub index_ok {
    my ($file) = @_;
    my $abs = Cwd::abs_path($file) // return 0;
    return 1 if $allowed_index{$abs};
    my $want = $index_text{$abs} or return 0;
    my @st = stat $abs;
    return @st && $st[0] == $want->[0] && $st[1] == $want->[1] && $st[7] == $want->[2] && $st[9] == $want->[3];
}

# verified_index($self, $gz, $base): verifies the 02packages.details.txt.gz
# a client fetched from the mirror $base and returns its text, or undef.
sub verified_index {
    my ($self, $gz, $base) = @_;
    $base =~ s{/+\z}{};
    $base = "file://$base" if $base =~ m{\A/};
    my ($verdict, $bytes) = arrive($self, $gz, $base, 'modules/02packages.details.txt.gz') or return undef;
    my $text = gunzip_strict($bytes);
    unless (defined $text) {
        _problem(EXIT_NOT_VERIFIED, 'modules/02packages.details.txt.gz', 'the logged index file is not gzip data', $self);
        return undef;
    }
    return $text;
}

# ---- cpanm and Menlo -------------------------------------------------

sub _refuse_tree {
    my ($self, $what, $dir) = @_;
    _problem(EXIT_NOT_VERIFIED, $dir, "$what: this tree was not unpacked from a verified archive (a local directory, a git checkout, or a leftover): nothing of it runs; to allow it, name it in CPANTLOG_NOVERIFY", $self);
    return;
}

my $database_said;

# wrap installs the gates into a loaded cpanm (App::cpanminus::script) or
# Menlo (Carton's): archives verified before they are unpacked and
# unpacked from the verified bytes; configure/build/test/install and look
# only in trees unpacked so; the index resolved from is the verified
# text; git, cpanmetadb and MetaCPAN answers refused.
sub wrap {
    no strict 'refs';
    no warnings qw(redefine once);
    for my $class (qw(App::cpanminus::script Menlo::CLI::Compat)) {
        next unless defined &{"${class}::unpack"};
        next if ${"${class}::CPANTLOG_WRAPPED"}++;

        my $unpack = \&{"${class}::unpack"};
        *{"${class}::unpack"} = sub {
            my ($self, $file, $uri, @rest) = @_;
            my ($verdict, $bytes, $sha) = arrive($self, $file, $uri) or return;
            my $copy = private_copy($bytes, $file, $sha);
            my $dir = $unpack->($self, $copy, $uri, @rest) or return;
            record_tree($dir, $verdict eq 'verified' ? $sha : $verdict);
            return $dir;
        };

        my $build = \&{"${class}::build_stuff"};
        *{"${class}::build_stuff"} = sub {
            my ($self, $stuff, $dist, $depth) = @_;
            my $cwd = Cwd::getcwd();
            unless (tree_verdict($cwd)) {
                # The --installdeps target with a cpanfile is the user's
                # own project: cpanm reads its cpanfile and installs its
                # dependencies, never builds it. Without a cpanfile its
                # Makefile.PL would run: that needs an exemption.
                my $own = $self->{installdeps} && !$depth && ($dist->{source} // '') eq 'local'
                    && defined $self->{cpanfile_path} && -e $self->{cpanfile_path};
                if ($own) {
                    _record_exempt($cwd, '--installdeps: your project, whose cpanfile is read; nothing of it is built or installed');
                } else {
                    my $pattern = exempt_by($cwd);
                    return _refuse_tree($self, "not building $stuff", $cwd) unless $pattern;
                    _record_exempt($cwd, $pattern);
                }
            }
            return $build->(@_);
        };

        my $look = \&{"${class}::look"};
        *{"${class}::look"} = sub {
            my ($self) = @_;
            my $cwd = Cwd::getcwd();
            unless (tree_verdict($cwd) || exempt_by($cwd)) {
                return _refuse_tree($self, 'not opening a shell', $cwd);
            }
            return $look->(@_);
        };

        my $git = \&{"${class}::git_uri"};
        *{"${class}::git_uri"} = sub {
            my ($self, $uri) = @_;
            my $pattern = exempt_by($uri);
            unless ($pattern) {
                _problem(EXIT_NOT_VERIFIED, $uri, 'a git repository is not a CPAN file: the log cannot vouch for it, so it is not cloned; to allow it, name it in CPANTLOG_NOVERIFY', $self);
                return;
            }
            my $dist = $git->(@_) or return;
            _record_exempt($uri, $pattern);
            record_tree($dist->{dir}, "exempt $pattern") if $dist->{dir};
            return $dist;
        };

        # Resolvers whose answers nothing can verify: not asked.
        for my $name (qw(search_database search_metacpan search_cpanmetadb)) {
            next unless defined &{"${class}::$name"};
            *{"${class}::$name"} = sub {
                my ($self) = @_;
                $self->chat(label() . ": not asking cpanmetadb or MetaCPAN: their answers cannot be verified; resolving from the mirror's verified 02packages\n")
                    unless $database_said++;
                return;
            };
        }

        if ($class eq 'App::cpanminus::script') {
            # cpanm: the mirror's 02packages, verified, is written anew as
            # the text cpanm searches; its own uncompressed copy (which it
            # would reuse when newer than the .gz) is removed.
            *{"${class}::generate_mirror_index"} = sub {
                my ($self, $mirror) = @_;
                my $file = $self->package_index_for($mirror);
                unlink $file;
                my $text = verified_index($self, "$file.gz", $mirror) // return;
                return write_index_text(_index_file_for($mirror), $text);
            };
            _gate_index_file($class, 'search_mirror_index_file');
            *{"${class}::search_mirror_index"} = sub {
                my ($self, $mirror, @rest) = @_;
                return $self->search_mirror_index_file(_index_file_for($mirror), @rest);
            };
        } else {
            # Menlo: --mirror-index only for Carton's index of
            # cpanfile.snapshot.
            _gate_index_file($class, 'search_mirror_index_local');
        }
    }
    # Menlo (Carton) reads the mirror's 02packages through its own index.
    if (defined &Menlo::Index::Mirror::refresh_index && !$Menlo::Index::Mirror::CPANTLOG_WRAPPED++) {
        my $refresh = \&Menlo::Index::Mirror::refresh_index;
        *Menlo::Index::Mirror::refresh_index = sub {
            my ($index) = @_;
            my $gz = File::Spec->catfile($index->cache, '02packages.details.txt.gz');
            (my $txt = $gz) =~ s/\.gz\z//;
            unlink $txt;
            eval { $refresh->(@_); 1 } or do { unlink $txt; die $@ };
            my $text = -f $gz ? verified_index(undef, $gz, $index->mirror) : undef;
            unless (defined $text && write_index_text($txt, $text)) {
                unlink $txt;
                Carp::croak(label() . ": the mirror's 02packages did not verify against cpan-tlog; nothing is resolved from it");
            }
            return 1;
        };
        *Menlo::Index::Mirror::search_packages = sub {
            my ($index) = @_;
            (my $txt = File::Spec->catfile($index->cache, '02packages.details.txt.gz')) =~ s/\.gz\z//;
            Carp::croak(label() . ": not resolving from $txt: it is not the index text that verified") unless index_ok($txt);
            return CPAN::Common::Index::Mirror::search_packages(@_);
        };
    }
    # Carton: the index it writes from cpanfile.snapshot (every
    # distribution in it is still verified before unpacking).
    if (defined &Carton::Builder::install && !$Carton::Builder::CPANTLOG_WRAPPED++) {
        my $install = \&Carton::Builder::install;
        *Carton::Builder::install = sub {
            my ($builder) = @_;
            my $index = $builder->index;
            return $install->(@_) unless $index;
            local $allowed_index{ Cwd::abs_path("$index") // "$index" } = 'cpanfile.snapshot';
            return $install->(@_);
        };
    }
}

# _gate_index_file($class, $method): the method, which searches the index
# file it is given, searches only index text written from verified bytes
# (or Carton's index of cpanfile.snapshot).
sub _gate_index_file {
    my ($class, $method) = @_;
    no strict 'refs';
    no warnings 'redefine';
    my $orig = \&{"${class}::$method"};
    *{"${class}::$method"} = sub {
        my ($self, $file) = @_;
        unless (index_ok($file)) {
            _problem(EXIT_NOT_VERIFIED, $file, 'not resolving from an index file that did not verify against the log (a --mirror-index file, or a copy changed since it verified)', $self);
            return;
        }
        return $orig->(@_);
    };
}

sub _index_file_for {
    my ($mirror) = @_;
    (my $name = $mirror) =~ s/[^\w.\-]+/%/g;
    return File::Spec->catfile(private_dir(), "$name-02packages.details.txt");
}

# Carton loads Menlo while it runs, after INIT: an @INC hook loads each of
# the modules the hooks wrap, then wraps them.
my %hooked = map { $_ => 1 } qw(App/cpanminus/script.pm Menlo/CLI/Compat.pm Menlo/Index/Mirror.pm Carton/Builder.pm);
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
# its modules before ours.
if (${^GLOBAL_PHASE} eq 'START') {
    eval 'INIT { CPAN::TLog::Cpanm::wrap() } 1' or die $@;
}

# summary: one line on the terminal (what verified, what did not, what
# was exempt, against which log), then each file that did not verify and
# why; it returns the exit status: 1 refused, 3 security error, 2 could not
# check, else 0.
sub summary {
    my ($fh) = @_;
    my ($refused, $unchecked, $code) = (0, 0, 0);
    for my $p (@problems) {
        my $c = $p->[0];
        $c == EXIT_USAGE ? $unchecked++ : $refused++;
        # Refused (1, or 3 for a security error) beats could not check (2).
        $code = $c if $c != EXIT_USAGE && ($code == 0 || $code == EXIT_USAGE || $c > $code);
        $code ||= $c;
    }
    return $code unless $verified || @problems || @exempt;
    my $log = '';
    if ($ENV{CPANTLOG_EXEC_CHECK}) {
        $log = " by cpantlog exec's proxy at $ENV{CPANTLOG_EXEC_CHECK}";
    } elsif ($policy && $policy->{logs} && @{ $policy->{logs} }) {
        my $l = $policy->{logs}[0];
        $log = " against $l->{name}";
    }
    printf {$fh} "%s: %d verified%s, %d refused, %d could not be checked, %d exempt\n", label(), $verified, $log, $refused, $unchecked, scalar @exempt;
    return $code if $ENV{CPANTLOG_EXEC_CHECK};    # cpantlog exec lists each file, once
    for my $p (@problems) {
        my ($c, $what, $why) = @$p;
        printf {$fh} "  %-9s %s\n            %s\n", ($c == EXIT_USAGE ? 'UNCHECKED' : $c == EXIT_SECURITY ? 'SECURITY' : 'REFUSED'), $what, $why;
    }
    printf {$fh} "  %-9s %s\n            not verified (exempt by %s)\n", 'EXEMPT', @$_ for @exempt;
    return $code;
}

# The process that loaded the hook speaks: a child it forks (CPAN.pm does)
# exits without a summary of its own.
my $pid = $$;

END {
    return unless $$ == $pid;
    my $code = summary(\*STDERR);
    $? = $code if $code;
}

1;

__END__

=head1 NAME

CPAN::TLog::Cpanm - the gate in cpanm and Carton: build only what verified

=head1 DESCRIPTION

Loaded into cpanm by L<cpanm-tlog> and into Carton's Menlo by
L<carton-tlog>, it moves verification to where bytes arrive and denies
everything else by default:

=over

=item *

every archive is verified against the cpan-tlog log (L<CPAN::TLog::Verify>)
before it is unpacked, and what is unpacked is a private copy of the bytes
that verified;

=item *

configure (C<Makefile.PL>/C<Build.PL>), build, test, install and C<look>
run only in a tree unpacked from such bytes in this run: a local
directory, a git repository, a file outside C<authors/id/> or a tree left
from another run is refused before any code of it runs;

=item *

modules are resolved only from the mirror's 02packages that verified
(logged, not stale), decompressed strictly from the verified bytes into a
file of the hook's own; cpanm's uncompressed copy is removed, a
C<--mirror-index> file is refused (except Carton's own index of
C<cpanfile.snapshot>, whose distributions are all verified anyway), and
cpanmetadb and MetaCPAN are not asked;

=item *

C<CPANTLOG_NOVERIFY> (comma-separated patterns, see
L<CPAN::TLog::NoVerify>) is the one way through for unlogged code; every
file or tree it lets through is listed as exempt.

=back

At exit it prints one line (verified, refused, could not be checked,
exempt) and each file that did not verify; the exit status is then 1
(refused), 3 (security error) or 2 (could not check).

=cut

=head1 LICENSE

This software is copyright (c) 2026 by the cpan-tlog developers.

This is free software; you can redistribute it and/or modify it under
the same terms as the Perl 5 programming language system itself.

=cut
