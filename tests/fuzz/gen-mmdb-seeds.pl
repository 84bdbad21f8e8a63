#!/usr/bin/perl
# Seed inputs for the MMDB fuzz target (tests/fuzz/fuzz_mmdb.c), written with the Debian
# package libmaxmind-db-writer-perl. Synthetic data only (never GeoLite2). These cover what
# the unit-test databases (tests/data/geo/gen-mmdb.pl) do not: 28- and 32-bit records, an
# IPv4 tree with 32-bit records, and every data type the loader's decoder must skip or
# convert (uint64, uint128, int32, boolean, bytes, arrays, numeric strings, nested maps).
#
# Usage: perl tests/fuzz/gen-mmdb-seeds.pl OUTDIR
# Writes OUTDIR/seed-r28-types.mmdb, OUTDIR/seed-r32-v4.mmdb, OUTDIR/seed-r32-flat.mmdb.
use strict;
use warnings;
use Math::BigInt;
use MaxMind::DB::Writer::Tree;

my $out = shift @ARGV or die "usage: $0 OUTDIR\n";
-d $out or mkdir $out or die "mkdir $out: $!\n";

my %types = (
    city => 'map', continent => 'map', country => 'map', registered_country => 'map',
    subdivisions => [ 'array', 'map' ], location => 'map', names => 'map',
    code => 'utf8_string', iso_code => 'utf8_string', en => 'utf8_string',
    latitude => 'double', longitude => 'double', accuracy_radius => 'uint16',
    geoname_id => 'uint32', big => 'uint64', huge => 'uint128', delta => 'int32',
    is_eu => 'boolean', raw => 'bytes', tags => [ 'array', 'utf8_string' ],
    extra => 'map', ratio => 'float',
    country_code => 'utf8_string', continent_code => 'utf8_string',
    subdivision_code => 'utf8_string',
);

sub write_db {
    my ($file, $ipv, $rs, $nets, $t) = @_;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => $ipv,
        record_size              => $rs,
        database_type            => 'geocast-fuzz-seed',
        languages                => ['en'],
        description              => { en => 'geocast fuzz seed' },
        map_key_type_callback    => sub { $t->{ $_[0] } // 'utf8_string' },
        alias_ipv6_to_ipv4       => ($ipv == 6 ? 1 : 0),
        remove_reserved_networks => 0,
    );
    $tree->insert_network($_->[0], $_->[1]) for @$nets;
    open my $fh, '>:raw', $file or die "$file: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$file: $!\n";
}

my %odd = (
    big => Math::BigInt->new('18446744073709551615'),
    huge => Math::BigInt->new('340282366920938463463374607431768211455'),
    delta => -42, is_eu => 1, raw => "\x00\x01\xff", tags => [ 'a', 'b', 'c' ],
    extra => { deeper => { deepest => { x => 'y' } } }, ratio => 0.5,
);

write_db("$out/seed-r28-types.mmdb", 6, 28, [
    [ '0.0.0.0/1', { %odd, continent => { code => 'EU' }, country => { iso_code => 'BE' } } ],
    [ '1.2.3.0/24', { %odd, country => { iso_code => 'US', names => { en => 'United States' } },
                      subdivisions => [ { iso_code => 'CA' }, { iso_code => 'LA' } ],
                      city => { names => { en => 'Los Angeles' } },
                      location => { latitude => 34.05, longitude => -118.24 } } ],
    [ '2a00::/12', { registered_country => { iso_code => 'GB' }, location => { latitude => 91.0, longitude => 0.0 } } ],
    [ '2c0f:f000::/20', { %odd } ],
    [ '::1/128', { city => { names => { en => '' } } } ],
], \%types);

write_db("$out/seed-r32-v4.mmdb", 4, 32, [
    [ '0.0.0.0/0', { country => { iso_code => 'ZZ' } } ],
    [ '10.0.0.0/8', { continent => { code => 'AS' }, country => { iso_code => 'jp' },
                      location => { latitude => -90.0, longitude => 180.0 } } ],
    [ '10.255.255.255/32', { %odd } ],
], \%types);

my %flat = (%types, city => 'utf8_string', latitude => 'utf8_string', longitude => 'utf8_string');
write_db("$out/seed-r32-flat.mmdb", 6, 32, [
    [ '1.2.3.0/24', { country_code => 'NL', continent_code => 'EU', subdivision_code => 'NH',
                      city => 'Amsterdam', latitude => '52.37', longitude => '4.89' } ],
    [ '2a01::/16', { country_code => 'NZ', latitude => 'north', longitude => '1e999' } ],
], \%flat);
