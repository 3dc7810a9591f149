use strict;
use warnings;
use Test::More;
use File::Spec;
use FindBin ();
use Pod::Checker ();
use Pod::Simple::SimpleTree ();

# The documentation: every module and every script has POD without
# errors, a NAME that gives its abstract and a LICENSE; every script has
# what a manual page needs (it is one once installed: man cpanm-tlog); a
# link to a document of this distribution leads to it, and to a section
# it has. (Links to other distributions' documents are checked in the
# repository's CI, where those are installed: cmd/cpantlog/perldist_test.go.)
my $root = File::Spec->catdir($FindBin::Bin, File::Spec->updir);
my (%doc, @modules, @scripts);
{
    my @dirs = ("$root/lib");
    while (my $d = shift @dirs) {
        opendir my $dh, $d or die "$d: $!";
        for (sort grep { !/^\./ } readdir $dh) {
            my $p = "$d/$_";
            if (-d $p) { push @dirs, $p }
            elsif (/\.pm\z/) { (my $m = substr($p, length "$root/lib/")) =~ s{/}{::}g; $m =~ s/\.pm\z//; push @modules, $m; $doc{$m} = $p }
        }
    }
    opendir my $dh, "$root/bin" or die "bin: $!";
    for (sort grep { !/^\./ } readdir $dh) { push @scripts, $_; $doc{$_} = "$root/bin/$_" }
}
ok(@modules >= 4 && @scripts >= 3, 'modules and scripts found') or diag("modules: @modules; scripts: @scripts");

# text: the text of a SimpleTree node.
sub text { my ($n) = @_; return ref $n ? join('', map { text($_) } @$n[2 .. $#$n]) : $n }

# outline(FILE): the heads (in order, with their first paragraph) and the
# link targets of a document.
my %outline;
sub outline {
    my ($file) = @_;
    return $outline{$file} ||= do {
        my $tree = Pod::Simple::SimpleTree->new->parse_file($file)->root;
        my (@heads, %anchors, @links);
        my $walk;
        $walk = sub {
            my ($n) = @_;
            return unless ref $n;
            if ($n->[0] =~ /\Ahead\d\z/ || $n->[0] =~ /\Aitem-/) {
                my $t = text($n);
                $t =~ s/\s+/ /g;
                $anchors{$t} = 1;
                push @heads, [ $t, '' ] if $n->[0] eq 'head1';
            }
            elsif ($n->[0] eq 'Para' && @heads && $heads[-1][1] eq '') {
                $heads[-1][1] = text($n);
            }
            if ($n->[0] eq 'L' && ($n->[1]{type} // '') eq 'pod') {
                push @links, [ defined $n->[1]{to} ? "$n->[1]{to}" : undef, defined $n->[1]{section} ? "$n->[1]{section}" : undef ];
            }
            $walk->($_) for @$n[2 .. $#$n];
        };
        $walk->($tree);
        { heads => \@heads, anchors => \%anchors, links => \@links };
    };
}

for my $name (@modules, @scripts) {
    my $file = $doc{$name};
    my $out = '';
    open my $fh, '>', \$out or die $!;
    my $checker = Pod::Checker->new(-warnings => 1);
    $checker->parse_from_file($file, $fh);
    is($checker->num_errors, 0, "$name: POD without errors") or diag($out);
    my $o = outline($file);
    my %head = map { $_->[0] => $_->[1] } @{ $o->{heads} };
    like($head{NAME} // '', qr/\A\Q$name\E - \S/, "$name: NAME gives '$name - abstract'");
    ok(exists $head{LICENSE}, "$name: LICENSE");
    for my $l (@{ $o->{links} }) {
        my ($to, $section) = @$l;
        my $target = defined $to ? $doc{$to} : $file;
        next unless $target;    # another distribution's document
        my $where = defined $to ? "L<$to" . (defined $section ? "/$section>" : '>') : "L</$section>";
        next unless defined $section;
        ok(outline($target)->{anchors}{$section}, "$name: $where leads to a section");
    }
}

for my $script (@scripts) {
    my %head = map { $_->[0] => 1 } @{ outline($doc{$script})->{heads} };
    my @missing = grep { !$head{$_} } 'NAME', 'SYNOPSIS', 'DESCRIPTION', 'EXIT STATUS', 'SEE ALSO';
    push @missing, 'OPTIONS or ENVIRONMENT' unless $head{OPTIONS} || $head{ENVIRONMENT};
    ok(!@missing, "$script: a manual page's sections") or diag("missing: @missing");
}

done_testing();
