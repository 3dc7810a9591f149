# differential.pl CASES: the Perl side of TestDifferential, run once for
# a whole batch. CASES holds one case a line, tab-separated:
#
#   proof  POLICY PROOF FILE PATH   as cpantlog-verify-pl --policy POLICY --proof PROOF --path PATH FILE
#   mirror POLICY ROOT  FILE PATH   as cpanm-tlog meets FILE from the mirror ROOT (its proof beside it,
#                                   no log to ask), with a fresh state
#
# and it prints, per case, "CODE<TAB>MESSAGE" on one line: the exit status
# the Perl toolchain gives.
use strict;
use warnings;
use CPAN::TLog::Verify qw(verify_file);
use CPAN::TLog::Cpanm ();
use File::Temp ();

sub slurp {
    my ($name) = @_;
    open my $fh, '<:raw', $name or die "$name: $!";
    local $/;
    my $b = <$fh>;
    return $b // '';
}

open my $in, '<', $ARGV[0] or die "$ARGV[0]: $!";
$| = 1;
local $SIG{__WARN__} = sub { };
while (my $line = <$in>) {
    chomp $line;
    my ($kind, $policy, $proof, $file, $path) = split /\t/, $line;
    my ($code, $msg);
    CPAN::TLog::Verify::forget_checkpoints();
    if ($kind eq 'proof') {
        # What bin/cpantlog-verify-pl does with its arguments.
        my $r = eval { verify_file(policy => slurp($policy), proof => slurp($proof), file => slurp($file), path => $path) };
        if ($r) {
            ($code, $msg) = (0, 'verified');
            # As cpantlog-verify-pl says it.
            $msg .= '; not checked: the ML-DSA-44 cosignature of ' . join(', ', @{ $r->{checkpoint}{not_checked} }) . ', which this verifier cannot check (CryptX has no ML-DSA)'
                if @{ $r->{checkpoint}{not_checked} || [] };
        } elsif (ref $@ eq 'CPAN::TLog::Verify::Error') {
            ($code, $msg) = ($@->{code}, $@->{message});
        } else {
            ($code, $msg) = (2, "$@");
        }
    } elsif ($kind eq 'mirror') {
        local $ENV{CPANTLOG_STATE} = File::Temp::tempdir(CLEANUP => 1);
        ($code, $msg) = eval {
            CPAN::TLog::Cpanm::use_policy(slurp($policy));
            CPAN::TLog::Cpanm::verify_bytes("file://$proof", $path, slurp($file));
        };
        ($code, $msg) = (2, ref $@ ? $@->{message} : "$@") unless defined $code;
    } else {
        die "unknown case kind '$kind'\n";
    }
    $msg //= '';
    $msg =~ s/[\x00-\x1f]+/ /g;
    print "$code\t$msg\n";
}
