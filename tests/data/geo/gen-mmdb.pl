#!/usr/bin/perl
# Generate the small MaxMind DB files used by tests/unit/geo/ (Debian package
# libmaxmind-db-writer-perl). Every network and value below is asserted by the tests:
# change both together.
#
# Usage: perl tests/data/geo/gen-mmdb.pl OUTDIR
# Writes OUTDIR/geo-city.mmdb (GeoIP2 City schema, IPv6 tree with IPv4 aliases),
#        OUTDIR/geo-flat.mmdb (flat ip-location-db style schema, float coordinates),
#        OUTDIR/geo-v4.mmdb   (IPv4-only tree, City schema),
#        OUTDIR/geo-city-28.mmdb and geo-city-32.mmdb (geo-city.mmdb with 28- and
#        32-bit records instead of 24).
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift @ARGV or die "usage: $0 OUTDIR\n";
-d $out or mkdir $out or die "mkdir $out: $!\n";

my %types = (
    city                => 'map',
    continent           => 'map',
    country             => 'map',
    registered_country  => 'map',
    subdivisions        => [ 'array', 'map' ],
    location            => 'map',
    names               => 'map',
    code                => 'utf8_string',
    iso_code            => 'utf8_string',
    en                  => 'utf8_string',
    de                  => 'utf8_string',
    latitude            => 'double',
    longitude           => 'double',
    accuracy_radius     => 'uint16',
    geoname_id          => 'uint32',
    time_zone           => 'utf8_string',
    # flat schema
    country_code        => 'utf8_string',
    continent_code      => 'utf8_string',
    subdivision_code    => 'utf8_string',
);
# the flat schema: top-level strings, coordinates as floats (or numeric strings)
my %flat_types = (%types, city => 'utf8_string', latitude => 'float', longitude => 'float');

sub city_rec {
    my (%a) = @_;
    my %r;
    $r{continent} = { code => $a{cont}, geoname_id => 6255148 } if $a{cont};
    $r{country} = { iso_code => $a{cc}, names => { en => "Country $a{cc}" } } if $a{cc};
    $r{registered_country} = { iso_code => $a{reg} } if $a{reg};
    $r{subdivisions} = [ map { { iso_code => $_ } } @{ $a{subs} } ] if $a{subs};
    $r{city} = { names => { en => $a{city}, de => "$a{city} (de)" }, geoname_id => 1 } if $a{city};
    if (defined $a{lat} || defined $a{lon}) {
        $r{location} = { accuracy_radius => 100, time_zone => 'UTC' };
        $r{location}{latitude} = $a{lat} if defined $a{lat};
        $r{location}{longitude} = $a{lon} if defined $a{lon};
    }
    return \%r;
}

sub write_db {
    my ($file, $ipv, $dbtype, $nets, $t, $rs) = @_;
    $t //= \%types;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => $ipv,
        record_size              => $rs // 24,
        database_type            => $dbtype,
        languages                => ['en'],
        description              => { en => 'geocast unit test data' },
        map_key_type_callback    => sub { $t->{ $_[0] } // 'utf8_string' },
        alias_ipv6_to_ipv4       => ($ipv == 6 ? 1 : 0),
        remove_reserved_networks => 0,
    );
    # wider networks first: a later, more specific insert overrides inside it
    for my $n (@$nets) {
        $tree->insert_network($n->[0], $n->[1]);
    }
    open my $fh, '>:raw', "$file.tmp" or die "$file.tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$file.tmp: $!\n";
    rename "$file.tmp", $file or die "rename $file: $!\n";
}

my $la = city_rec(cont => 'NA', cc => 'US', subs => ['CA'], city => 'Los Angeles', lat => 34.0522, lon => -118.2437);

my @city_nets = (
    [ '1.0.0.0/8',     city_rec(cont => 'OC', cc => 'AU', lat => -33.494, lon => 143.2104) ],   # no city
    [ '1.2.0.0/16',    $la ],
    [ '1.2.3.0/24',    city_rec(cont => 'NA', cc => 'US', subs => ['NY'], city => 'New York', lat => 40.7128, lon => -74.006) ],
    [ '1.2.3.128/25',  city_rec(cont => 'EU', cc => 'BE', subs => ['BRU'], city => 'Brussels', lat => 50.8336, lon => 4.3337) ],
    [ '1.2.4.0/24',    city_rec(cont => 'NA', cc => 'US', subs => ['CA'], city => 'Los Angeles', lat => 34.0522, lon => -118.2437) ],
    [ '1.2.5.0/24',    city_rec(cont => 'NA', cc => 'US', subs => ['CA'], city => 'San Francisco', lat => 37.7749, lon => -122.4194) ],
    [ '5.5.0.0/16',    city_rec(reg => 'DE') ],                                  # registered country only
    [ '5.6.0.0/16',    city_rec(cont => 'AS') ],                                 # continent only
    [ '5.7.0.0/16',    city_rec(cont => 'EU', cc => 'FR', lat => 48.85) ],       # latitude without longitude
    [ '5.8.0.0/16',    city_rec(cont => 'AS', cc => 'JP', subs => ['13', 'X'], city => 'Tokyo', lat => 35.6895, lon => 139.6917) ],
    [ '5.9.0.0/16',    city_rec(cont => 'EU', cc => 'CH', subs => ['ZH'], city => "Z\x{fc}rich", lat => 47.3769, lon => 8.5417) ],
    [ '5.10.0.0/16',   {} ],                                                     # empty record
    [ '2a00:1000::/32',   city_rec(cont => 'EU', cc => 'GB', subs => ['ENG'], city => 'London', lat => 51.5074, lon => -0.1278) ],
    [ '2a00:1000:1::/48', city_rec(cont => 'EU', cc => 'FR', subs => ['IDF'], city => 'Paris', lat => 48.8566, lon => 2.3522) ],
    [ '2600::/12',        city_rec(cont => 'NA', cc => 'US', lat => 37.751, lon => -97.822) ],
    [ '2600:1000::/28',   city_rec(cont => 'NA', cc => 'US', subs => ['CA'], city => 'San Jose', lat => 37.3382, lon => -121.8863) ],
);
write_db("$out/geo-city.mmdb", 6, 'GeoIP2-City', \@city_nets);
# the same tree with the format's two other record sizes (the search tree reader's cases)
write_db("$out/geo-city-28.mmdb", 6, 'GeoIP2-City', \@city_nets, undef, 28);
write_db("$out/geo-city-32.mmdb", 6, 'GeoIP2-City', \@city_nets, undef, 32);

write_db("$out/geo-flat.mmdb", 6, 'ip-location-db-test', [
    [ '1.2.3.0/24',       { country_code => 'NL', city => 'Amsterdam', latitude => 52.37, longitude => 4.89 } ],
    [ '8.8.8.0/24',       { country_code => 'US', latitude => 37.751, longitude => -97.822 } ],
    [ '2a00:1000:2::/48', { country_code => 'SE', subdivision_code => 'AB' } ],
    [ '2a01::/16',        { country_code => 'nz', continent_code => 'oc', latitude => -41.25, longitude => 174.75 } ],
], \%flat_types);

write_db("$out/geo-v4.mmdb", 4, 'GeoIP2-Country', [
    [ '10.0.0.0/8',   city_rec(cont => 'EU', cc => 'IT') ],
    [ '10.1.0.0/16',  city_rec(cont => 'EU', cc => 'ES') ],
    [ '200.0.0.0/5',  city_rec(cont => 'SA', cc => 'BR') ],
]);
