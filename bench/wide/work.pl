# bench/wide.py's Perl workload (perl work.pl ROUNDS): per round, an array
# of 50000 pseudo-random integers sorted, 20000 strings formatted, joined,
# matched with a regular expression and counted in a hash, and a recursive
# Fibonacci.  Integer arithmetic only, so the printed sum is the same on
# every system.  Core Perl only (the guest has perl-base, no modules).
use strict;
use warnings;

my $rounds = shift // 1;

sub fib {
    my $k = shift;
    return $k < 2 ? $k : fib($k - 1) + fib($k - 2);
}

my $sum = 0;
for my $round (1 .. $rounds) {
    my $seed = $round;
    my @t;
    for (1 .. 50000) {
        $seed = ($seed * 1103515245 + 12345) % 2147483648;
        push @t, $seed;
    }
    @t = sort { $a <=> $b } @t;
    $sum = ($sum + $t[0] + $t[24999] + $t[49999]) % 1000000007;

    my $s = join ",", map { sprintf "%05d:%x", $_, $t[$_ * 2 - 1] % 65536 } 1 .. 20000;
    my ($hits, %count) = (0);
    while ($s =~ /(\d+):([0-9a-f]+)/g) {
        $hits++ if index($2, "f") >= 0;
        $count{substr $2, 0, 2}++;
    }
    $sum = ($sum + $hits * 7 + length($s) + scalar(keys %count) + fib(20)) % 1000000007;
}
printf "perl %d rounds: %d\n", $rounds, $sum;
