use strict;
use warnings;
use Test::More;
use File::Spec;
use FindBin ();
use lib "$FindBin::Bin/../lib";
use CPAN::TLog::NoVerify;

# The shared vectors are the repository's testdata/vectors-noverify.txt;
# 'make dist' copies them to t/vectors-noverify.txt. The Go package
# client/noverify is held to the same file.
my ($vectors) = grep { -e } "$FindBin::Bin/vectors-noverify.txt",
    File::Spec->catfile($FindBin::Bin, qw(.. .. .. testdata vectors-noverify.txt));
ok(defined $vectors, 'the shared vectors are here')
    or diag("build the distribution with 'make dist' in the repository's client/perl");

sub parse_err {
    my ($s) = @_;
    my $p = eval { CPAN::TLog::NoVerify::parse($s) };
    return $p ? undef : $@;
}

# unescape: \xNN is the byte NN, \\ a backslash (the vectors' escapes).
sub unescape {
    my ($s, $where) = @_;
    die "$where: bad escape in '$s'\n" unless $s =~ /\A(?:[^\\]|\\\\|\\x[0-9a-fA-F]{2})*\z/;
    $s =~ s/\\(\\|x([0-9a-fA-F]{2}))/defined $2 ? chr(hex $2) : '\\'/ge;
    return $s;
}

if (defined $vectors) {
    open my $fh, '<:raw', $vectors or die "$vectors: $!";
    my $n = 0;
    while (my $line = <$fh>) {
        chomp $line;
        next if $line eq '' || $line =~ /\A#/;
        my @f = split /\t/, $line, -1;
        is(scalar @f, 3, "line $.: three fields") or next;
        my ($patterns, $subject, $expected) = map { unescape($_, "line $.") } @f;
        my $name = sprintf 'line %d: %s / %s', $., map { my $x = $_; $x =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge; $x } $patterns, $subject;
        $n++;
        my $p = eval { CPAN::TLog::NoVerify::parse($patterns) };
        my $err = $@;
        if ($expected eq 'invalid') {
            ok(!$p && ref $err eq 'CPAN::TLog::NoVerify::Error' && $err->{code} == 2
                && index($patterns, $err->{pattern}) >= 0 && index($err->{message}, "CPANTLOG_NOVERIFY: pattern ") == 0,
                "$name: refused") or diag(ref $err ? $err->{message} : $err);
            next;
        }
        ok($p, "$name: parses") or diag(ref $err ? $err->{message} : $err), next;
        my $got = $p->match($subject);
        is(defined $got ? $got : '-', $expected, "$name: matches $expected");
    }
    cmp_ok($n, '>=', 40, "$n shared vectors");
}

# What the refusals say: the pattern, why, and what to write instead.
my @errors = (
    [ 'a, b c',           q{CPANTLOG_NOVERIFY: pattern "b c" has white space or a control character inside it (at byte 1): separate patterns with commas} ],
    [ "/x/\x1b[2J",       q{pattern "/x/\x1b[2J" has white space or a control character inside it (at byte 3)} ],
    [ "/x/\xff",          q{pattern "/x/\xff" is not valid UTF-8} ],
    [ "/x/a\xc2\xa0b",    q{pattern "/x/a\xc2\xa0b" has white space} ],
    [ '/x,*',             q{pattern "*" would exempt everything: name what to exempt, such as authors/id/M/MY/MYCOMPANY} ],
    [ 'https://*',        q{pattern "https://*" would exempt every URL of its scheme: name the host} ],
    [ 'authors/id/*/*/*', q{pattern "authors/id/*/*/*" would exempt every CPAN author's uploads (a wildcard at or above the PAUSE id): name the author directory, such as authors/id/M/MY/MYCOMPANY or authors/id/*/*/MYCOMPANY} ],
    [ 'modules',          q{pattern "modules" matches the index file modules/02packages.details.txt.gz, which chooses what is installed and is never exempt: name the distributions' author directory instead} ],
    [ 'authors/id/M/MY/MYCOMPANY//', q{pattern "authors/id/M/MY/MYCOMPANY//" ends in "/": a pattern covers everything below it already; write "authors/id/M/MY/MYCOMPANY"} ],
    [ '/a,/b/"\\/',       q{CPANTLOG_NOVERIFY: pattern "/b/\x22\x5c/" ends in "/": a pattern covers everything below it already; write "/b/\x22\x5c"} ],
);
for (@errors) {
    my ($in, $want) = @$_;
    my $err = parse_err($in);
    ok(ref $err && index($err->message, $want) >= 0, "refusal of '$want'") or diag(ref $err ? $err->message : 'parsed');
}
ok(!parse_err('/x/"q\\'), q{'"' and '\' are literal});

# Empty, unset, trimming, as_string, object methods.
for my $s (undef, '', ' ', ',', " , \t,\n") {
    my $p = CPAN::TLog::NoVerify::parse($s);
    is($p->as_string, '', 'empty value: no patterns');
    is($p->match('authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz'), undef, 'empty value: exempts nothing');
}
is(CPAN::TLog::NoVerify::parse(" /a ,, /b\t")->as_string, '/a,/b', 'trimmed, empty entries dropped');
is_deeply([ CPAN::TLog::NoVerify->parse('/a,/b')->patterns ], [ '/a', '/b' ], 'parse as a class method');
is(CPAN::TLog::NoVerify::match(undef, '/a'), undef, 'match without an object: nothing');
is(CPAN::TLog::NoVerify::parse("/home/\x{263a}")->match("/home/\xe2\x98\xba/x"), "/home/\xe2\x98\xba", 'a string with characters above 0xFF is UTF-8 encoded');
is(CPAN::TLog::NoVerify::parse("/home/\xe2\x98\xba")->match("/home/\x{263a}/x"), "/home/\xe2\x98\xba", 'so is a subject');
ok(parse_err("/home/caf\x{e9}"), 'other strings are bytes (\xe9 alone is not UTF-8)');
{
    local $ENV{CPANTLOG_NOVERIFY};
    delete $ENV{CPANTLOG_NOVERIFY};
    is(CPAN::TLog::NoVerify::from_env()->as_string, '', 'unset: nothing');
    $ENV{CPANTLOG_NOVERIFY} = 'authors/id/M/MY/MYCOMPANY, /home/me/src';
    is(CPAN::TLog::NoVerify::from_env()->match('/home/me/src/MyApp'), '/home/me/src', 'from_env');
    is(CPAN::TLog::NoVerify->from_env->match('/home/me/src/MyApp'), '/home/me/src', 'from_env as a class method');
    $ENV{CPANTLOG_NOVERIFY} = '/home/me/src,authors/*';
    my $p = eval { CPAN::TLog::NoVerify::from_env() };
    like(ref $@ ? $@->{message} : 'parsed', qr{\ACPANTLOG_NOVERIFY: pattern "authors/\*" }, 'from_env refuses');
    is(ref $@ ? $@->{code} : 0, 2, 'with code 2');
}

# Round trip and the properties the Go fuzz target checks, on random input.
srand(1);
my @alphabet = ('a', 'b', '/', '*', '?', "\xc3\xa9", "\xff", "\xc3", '.', '-', ':', 'authors', 'id', 'modules', ' ', ',');
sub rand_string { join '', map { $alphabet[rand @alphabet] } 1 .. int(rand($_[0] + 1)) }
my ($valid, $bad) = (0, 0);
for (1 .. 3000) {
    my $s = rand_string(12);
    my $p = eval { CPAN::TLog::NoVerify::parse($s) };
    if (!$p) {
        $bad++ unless ref $@ eq 'CPAN::TLog::NoVerify::Error' && index($s, $@->{pattern}) >= 0;
        next;
    }
    $valid++;
    my $again = CPAN::TLog::NoVerify::parse($p->as_string);
    $bad++ unless $again->as_string eq $p->as_string;
    for my $pat ($p->patterns) {
        $bad++ if $pat !~ /[*?]/ && !CPAN::TLog::NoVerify::leads_elsewhere($pat) && !defined $p->match($pat);
        $bad++ if grep { defined $p->match($_) } @CPAN::TLog::NoVerify::INDEX_PATHS;
    }
}
is($bad, 0, 'random values: refusals name a pattern of the value, patterns round-trip, match themselves, never an index file');
cmp_ok($valid, '>=', 300, "random values: $valid parsed");

done_testing();
