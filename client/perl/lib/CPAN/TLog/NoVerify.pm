package CPAN::TLog::NoVerify;

# CPAN::TLog::NoVerify - the CPANTLOG_NOVERIFY patterns: what the CPAN
# clients let through without the log. The same matcher as the Go package
# client/noverify; both are held to testdata/vectors-noverify.txt. Core
# Perl only. See the POD at the end.

use strict;
use warnings;

our $VERSION = '1.00';

use constant {
    ENV_VAR    => 'CPANTLOG_NOVERIFY',
    EXIT_USAGE => 2,
};

# The index files no pattern may match (internal/cpan.IndexPaths).
our @INDEX_PATHS = qw(
    modules/02packages.details.txt.gz
    modules/02packages.details.txt
    modules/06perms.txt.gz
    modules/06perms.txt
    authors/01mailrc.txt.gz
);

# One character: a well-formed UTF-8 sequence, or else one byte (as Go's
# utf8.DecodeRuneInString reads it).
my $CHAR = qr/[\x00-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}|[\x80-\xff]/;

# Control characters (Unicode Cc) and white space (Unicode White_Space) in
# UTF-8: C0, space, DEL, C1, U+00A0, U+1680, U+2000-U+200A, U+2028,
# U+2029, U+202F, U+205F, U+3000.
my $BAD = qr/[\x00-\x20\x7f]|\xc2[\x80-\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80/;

# Strings are bytes; one with characters above 0xFF is taken as text and
# encoded as UTF-8 first.
sub _bytes {
    my ($s) = @_;
    $s = '' unless defined $s;
    if ($s =~ /[^\x00-\xff]/) { utf8::encode($s) }
    return $s;
}

sub _chars { my @c = $_[0] =~ /($CHAR)/g; return \@c }

# _quote: "s" with bytes outside printable ASCII, '"' and '\' as \xNN.
sub _quote {
    my ($s) = @_;
    $s =~ s/([^\x20-\x7e]|["\\])/sprintf('\\x%02x', ord $1)/ge;
    return qq{"$s"};
}

# _glob_elem($pattern_chars, $subject): one glob element (no '/') against
# one path element: '*' any run of characters, '?' one, the rest literal.
sub _glob_elem {
    my ($p, $s) = @_;
    $s = _chars($s);
    my ($px, $sx, $star_px, $star_sx) = (0, 0, -1, 0);
    while ($px < @$p || $sx < @$s) {
        if ($px < @$p) {
            my $c = $p->[$px];
            if ($c eq '*') {
                ($star_px, $star_sx) = ($px, $sx);
                $px++;
                next;
            }
            if ($c eq '?' ? $sx < @$s : $sx < @$s && $s->[$sx] eq $c) {
                $px++;
                $sx++;
                next;
            }
        }
        # Mismatch: let the last '*' take one more character.
        if ($star_px >= 0 && $star_sx < @$s) {
            $star_sx++;
            ($px, $sx) = ($star_px + 1, $star_sx);
            next;
        }
        return 0;
    }
    return 1;
}

# _match_elems(\@elems, $subject): the pattern's elements (each an array
# of characters) against subject or its leading part followed by '/'. The
# glob matches only strings with as many '/' as it has, so the one
# candidate is subject cut before its @elems-th '/'.
sub _match_elems {
    my ($elems, $subject) = @_;
    my $rest = $subject;
    for my $i (0 .. $#$elems) {
        my $s;
        my $j = index($rest, '/');
        if ($i == $#$elems) {
            $s = $j < 0 ? $rest : substr($rest, 0, $j);
        } else {
            return 0 if $j < 0;
            $s = substr($rest, 0, $j);
            $rest = substr($rest, $j + 1);
        }
        return 0 unless _glob_elem($elems->[$i], $s);
    }
    return 1;
}

sub _elems {
    my ($pattern) = @_;
    return [ map { _chars($_) } split(m{/}, $pattern, -1) ];
}

# _check($pattern): why the pattern (trimmed, not empty) is refused, or undef.
sub _check {
    my ($pattern) = @_;
    my $chars = _chars($pattern);
    return 'is not valid UTF-8' if grep { length($_) == 1 && ord($_) >= 0x80 } @$chars;
    if ($pattern =~ $BAD) {
        return "has white space or a control character inside it (at byte $-[0]): separate patterns with commas";
    }
    my ($scheme) = $pattern =~ /\A([A-Za-z*?][A-Za-z0-9+.\-*?]*:)/;
    my $rest = defined $scheme ? substr($pattern, length $scheme) : $pattern;
    if ($rest =~ m{\A[*?/]*\z}) {
        return 'would exempt every URL of its scheme: name the host, such as https://git.example.com/myorg' if defined $scheme;
        return 'would exempt everything: name what to exempt, such as authors/id/M/MY/MYCOMPANY, https://git.example.com/myorg or /home/me/src';
    }
    my $elems = _elems($pattern);
    if (_glob_elem($elems->[0], 'authors') && (@$elems == 1 || _glob_elem($elems->[1], 'id'))) {
        my @raw = split m{/}, $pattern, -1;
        my $named = grep { length && !/\A[*?]/ } @raw[4 .. $#raw];
        return "would exempt every CPAN author's uploads (a wildcard at or above the PAUSE id): name the author directory, such as authors/id/M/MY/MYCOMPANY or authors/id/*/*/MYCOMPANY"
            unless $named;
    }
    for my $ip (@INDEX_PATHS) {
        return "matches the index file $ip, which chooses what is installed and is never exempt: name the distributions' author directory instead, such as authors/id/M/MY/MYCOMPANY"
            if _match_elems($elems, $ip);
    }
    if ($pattern =~ m{/\z}) {
        (my $without = $pattern) =~ s{/+\z}{};
        return 'ends in "/": a pattern covers everything below it already; write ' . _quote($without);
    }
    return undef;
}

# parse($string): the patterns of a CPANTLOG_NOVERIFY value, or dies with a
# CPAN::TLog::NoVerify::Error { code => 2, message, pattern }.
sub parse {
    shift if @_ == 2 && defined $_[0] && $_[0] eq __PACKAGE__;
    my $s = _bytes($_[0]);
    my (@list, @elems);
    for my $f (split /,/, $s, -1) {
        $f =~ s/\A[ \t\n\x0b\f\r]+//;
        $f =~ s/[ \t\n\x0b\f\r]+\z//;
        next if $f eq '';
        if (defined(my $reason = _check($f))) {
            die bless { code => EXIT_USAGE, pattern => $f, message => ENV_VAR . ': pattern ' . _quote($f) . " $reason" },
                'CPAN::TLog::NoVerify::Error';
        }
        push @list, $f;
        push @elems, _elems($f);
    }
    return bless { list => \@list, elems => \@elems }, __PACKAGE__;
}

# from_env(): parse($ENV{CPANTLOG_NOVERIFY}); unset or empty exempts nothing.
sub from_env {
    return parse($ENV{ +ENV_VAR });
}

# $p->match($subject): the first pattern that matches subject, or undef.
sub match {
    my ($self, $subject) = @_;
    return undef unless ref $self;
    $subject = _bytes($subject);
    return undef if leads_elsewhere($subject);
    for my $i (0 .. $#{ $self->{list} }) {
        return $self->{list}[$i] if _match_elems($self->{elems}[$i], $subject);
    }
    return undef;
}

# leads_elsewhere($subject): whether a subject could name another place
# than the one it spells (a . or .. element, an encoded '.', '/' or '\', a
# backslash, a query or a fragment); such a subject is never exempt.
sub leads_elsewhere {
    my ($s) = @_;
    return 1 if grep { $_ eq '.' || $_ eq '..' } split m{/}, $s, -1;
    return 1 if $s =~ m{[\\?#]|%(?:2[eEfF]|5[cC])};
    return 0;
}

# $p->patterns: the patterns, in order.
sub patterns { return @{ $_[0]{list} } }

# $p->as_string: the patterns joined by commas; parse() of it is $p again.
sub as_string { return join ',', @{ $_[0]{list} } }

package CPAN::TLog::NoVerify::Error;

sub message { $_[0]{message} }
sub code    { $_[0]{code} }
sub pattern { $_[0]{pattern} }

1;

__END__

=head1 NAME

CPAN::TLog::NoVerify - the CPANTLOG_NOVERIFY patterns: what may be installed without the transparency log

=head1 SYNOPSIS

  use CPAN::TLog::NoVerify;

  my $noverify = eval { CPAN::TLog::NoVerify::from_env() };
  if (my $err = $@) {
      print STDERR "$err->{message}\n";
      exit $err->{code};                        # 2: the tool does not start
  }
  if (defined(my $pattern = $noverify->match($subject))) {
      print "$subject: not verified (exempt by $pattern)\n";
  }

=head1 DESCRIPTION

The CPAN clients of cpan-tlog refuse everything the log has not recorded.
C<CPANTLOG_NOVERIFY> names what may come through anyway (a DarkPAN, a git
repository, a module under development), as C<GONOSUMDB>/C<GOPRIVATE> do
for Go; every file it lets through is reported as C<not verified (exempt by
PATTERN)>. This module is the Perl twin of the Go package
C<github.com/CPAN-Security/cpan-tlog/client/noverify>: both are held to the
shared vectors in F<testdata/vectors-noverify.txt>, so a pattern means the
same to every client.

=head2 Syntax

C<CPANTLOG_NOVERIFY> is a comma-separated list of patterns. ASCII white
space around each pattern is trimmed and empty entries are ignored; an
unset or empty variable exempts nothing.

A I<subject> is the string naming what arrived: for a CPAN file its CPAN
path (C<authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz>, or an index path such
as C<modules/02packages.details.txt.gz>); for a URL (git, http, file) the
URL as given; for a local file or directory its absolute path.

A pattern matches a subject when its glob matches the whole subject, or a
leading part of it that is followed by C</> in the subject: a pattern
covers everything below what it names, by whole path elements
(C<authors/id/M/MY/MYCO> matches C<authors/id/M/MY/MYCO/X-1.tar.gz> but
not C<authors/id/M/MY/MYCOMPANY/X-1.tar.gz>). In the glob, C<*> matches
any run of characters other than C</>, C<?> any one character other than
C</>, and every other character is literal: no character classes, no
escapes. Matching is case-sensitive. A character is a UTF-8 encoded code
point; in a subject that is not valid UTF-8, each byte that does not begin
a valid sequence is one character.

The result of a match is the first pattern, in the variable's order, that
matches.

=head2 Refused patterns

C<parse> refuses the whole variable (the tool must not start: exit 2),
naming the pattern, why, and what to write instead, when a pattern

=over

=item *

is not valid UTF-8, or has a control character (Unicode Cc) or white
space (Unicode White_Space) inside it;

=item *

would exempt everything: it is made only of C<*>, C<?> and C</> (C<*>,
C<*/*>), or it is a URL scheme followed only by those (C<https:>,
C<https://*>, C<file:///*>, C<*://*/*>);

=item *

would exempt every CPAN author: its first element matches C<authors>, and
either it has one element, or its second element matches C<id> and none
of its elements from the fifth (the PAUSE id) on begins with a literal
character. C<authors>, C<authors/id>, C<authors/*>, C<authors/id/*/*/*>,
C<authors/id/E/ET/*>, C<authors/id/*/*/*/*> and
C<authors/id/*/*/*/*.tar.gz> are refused; C<authors/id/M/MY/MYCOMPANY>,
C<authors/id/*/*/MYCOMPANY> and C<authors/id/*/*/*/MyCompany-*> are fine;

=item *

matches an index file (C<@CPAN::TLog::NoVerify::INDEX_PATHS>, such as
C<modules/02packages.details.txt.gz>, or C<modules> itself): the index
chooses what is installed and is never exempt;

=item *

ends in C</> (the pattern without it covers everything below it).

=back

The refusals catch mistakes, not malice: a pattern that names something is
taken at its word.

Strings are bytes, as C<%ENV> and file names are; a string with characters
above 0xFF is taken as text and encoded as UTF-8 first.

=head1 FUNCTIONS

=over

=item parse($string)

Returns a C<CPAN::TLog::NoVerify> object for a C<CPANTLOG_NOVERIFY> value,
or dies with a C<CPAN::TLog::NoVerify::Error>, a hash reference
C<< { code => 2, message => "CPANTLOG_NOVERIFY: pattern \"...\" ...", pattern => ... } >>
(also with C<code>, C<message> and C<pattern> methods). The message quotes
the pattern with bytes outside printable ASCII as C<\xNN>, and is the Go
package's error message byte for byte.

=item from_env()

C<parse($ENV{CPANTLOG_NOVERIFY})>.

=item $p->match($subject)

The first pattern that matches C<$subject>, or C<undef>.

=item $p->patterns

The patterns, in order, trimmed.

=item $p->as_string

The patterns joined by commas; C<parse> of it gives the same patterns.

=back

=head1 SEE ALSO

F<docs/exemptions.md> in the cpan-tlog repository, L<CPAN::TLog::Cpanm>,
L<CPAN::TLog::Verify>.

=cut

=head1 LICENSE

This software is copyright (c) 2026 by the cpan-tlog developers.

This is free software; you can redistribute it and/or modify it under
the same terms as the Perl 5 programming language system itself.

=cut
