#!/usr/bin/perl
# Generate the small GeoIP2-City-schema MaxMind DB used by tests/integration/t_routing.py
# (Debian package libmaxmind-db-writer-perl). The networks are public, routable-looking
# ranges (never private/loopback/documentation ones: geocast treats such ECS addresses as
# "no ECS"); every network and value below is relied on by t_routing.py: change both.
#
# Usage: perl tests/data/route/gen-route-mmdb.pl OUT.mmdb
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift @ARGV or die "usage: $0 OUT.mmdb\n";

my %types = (
    city               => 'map',
    continent          => 'map',
    country            => 'map',
    registered_country => 'map',
    subdivisions       => [ 'array', 'map' ],
    location           => 'map',
    names              => 'map',
    code               => 'utf8_string',
    iso_code           => 'utf8_string',
    en                 => 'utf8_string',
    latitude           => 'double',
    longitude          => 'double',
    accuracy_radius    => 'uint16',
    geoname_id         => 'uint32',
    time_zone          => 'utf8_string',
);

sub rec {
    my (%a) = @_;
    my %r;
    $r{continent} = { code => $a{cont}, geoname_id => 1 } if $a{cont};
    $r{country} = { iso_code => $a{cc}, geoname_id => 2, names => { en => "Country $a{cc}" } } if $a{cc};
    $r{registered_country} = { iso_code => $a{cc}, geoname_id => 2 } if $a{cc};
    $r{subdivisions} = [ { iso_code => $a{sub}, geoname_id => 3 } ] if $a{sub};
    $r{city} = { names => { en => $a{city} }, geoname_id => 4 } if $a{city};
    if (defined $a{lat}) {
        $r{location} = { accuracy_radius => 50, latitude => $a{lat}, longitude => $a{lon},
                         time_zone => 'UTC' };
    }
    return \%r;
}

# [network, record]. Wider networks first: a later, more specific insert overrides inside it.
my @nets = (
    # Asia / Oceania
    [ '1.0.0.0/24',   rec(cont => 'AS', cc => 'JP', sub => '13',  city => 'Tokyo',     lat => 35.6895,  lon => 139.6917) ],
    [ '1.0.1.0/24',   rec(cont => 'AS', cc => 'CN', sub => 'BJ',  city => 'Beijing',   lat => 39.9042,  lon => 116.4074) ],
    [ '1.0.2.0/23',   rec(cont => 'OC', cc => 'AU', sub => 'NSW', city => 'Sydney',    lat => -33.8688, lon => 151.2093) ],
    # North America
    [ '2.0.0.0/16',   rec(cont => 'NA', cc => 'US', sub => 'CA',  city => 'Los Angeles',   lat => 34.0522, lon => -118.2437) ],
    [ '2.1.0.0/16',   rec(cont => 'NA', cc => 'US', sub => 'CA',  city => 'San Francisco', lat => 37.7749, lon => -122.4194) ],
    [ '2.2.0.0/16',   rec(cont => 'NA', cc => 'US', sub => 'NY',  city => 'New York',      lat => 40.7128, lon => -74.006) ],
    [ '2.3.0.0/16',   rec(cont => 'NA', cc => 'US',                                        lat => 37.751,  lon => -97.822) ],
    [ '2.4.0.0/16',   rec(cont => 'NA', cc => 'CA', sub => 'QC',  city => 'Montreal',      lat => 45.5017, lon => -73.5673) ],
    [ '2.5.0.0/16',   rec(cont => 'NA', cc => 'US', sub => 'NV',  city => 'Las Vegas',     lat => 36.1699, lon => -115.1398) ],
    # Europe
    [ '3.0.0.0/16',   rec(cont => 'EU', cc => 'DE', sub => 'HE',  city => 'Frankfurt am Main', lat => 50.1109, lon => 8.6821) ],
    [ '3.1.0.0/16',   rec(cont => 'EU', cc => 'FR', sub => 'IDF', city => 'Paris',             lat => 48.8566, lon => 2.3522) ],
    [ '3.2.0.0/16',   rec(cont => 'EU', cc => 'GB', sub => 'ENG', city => 'London',            lat => 51.5074, lon => -0.1278) ],
    # South America, Africa
    [ '4.0.0.0/16',   rec(cont => 'SA', cc => 'BR', sub => 'SP',  city => 'Sao Paulo',     lat => -23.5505, lon => -46.6333) ],
    [ '4.1.0.0/16',   rec(cont => 'AF', cc => 'ZA', sub => 'GP',  city => 'Johannesburg',  lat => -26.2041, lon => 28.0473) ],
    # a known country without coordinates (a client with no coordinates)
    [ '5.0.0.0/16',   rec(cont => 'EU', cc => 'RU') ],
    # Africa, on the equator
    [ '6.0.0.0/16',   rec(cont => 'AF', cc => 'CG',                                        lat => 0.0,     lon => 20.0) ],
    # IPv6
    [ '2a00:1000::/32', rec(cont => 'EU', cc => 'DE', sub => 'BE', city => 'Berlin',      lat => 52.52,   lon => 13.405) ],
    [ '2a00:1001::/32', rec(cont => 'AS', cc => 'JP', sub => '27', city => 'Osaka',       lat => 34.6937, lon => 135.5023) ],
    [ '2600:1000::/32', rec(cont => 'NA', cc => 'US', sub => 'CA', city => 'Los Angeles', lat => 34.0522, lon => -118.2437) ],
    [ '2600:1001::/32', rec(cont => 'NA', cc => 'US',                                     lat => 37.751,  lon => -97.822) ],
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'GeoIP2-City',
    languages                => ['en'],
    description              => { en => 'geocast routing test data' },
    map_key_type_callback    => sub { $types{ $_[0] } // 'utf8_string' },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 0,
);
$tree->insert_network($_->[0], $_->[1]) for @nets;
open my $fh, '>:raw', "$out.tmp" or die "$out.tmp: $!\n";
$tree->write_tree($fh);
close $fh or die "$out.tmp: $!\n";
rename "$out.tmp", $out or die "rename $out: $!\n";
