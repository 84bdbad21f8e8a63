#!/usr/bin/perl
# Generate the two small GeoIP2-Country-schema MaxMind DBs that tests/integration/t_geodiff.py
# compares (Debian package libmaxmind-db-writer-perl). Every network below is relied on by
# the exact figures in t_geodiff.py: change both.
#
# Usage: perl tests/data/geodiff/gen-geodiff-mmdb.pl OLD.mmdb NEW.mmdb
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($old, $new) = @ARGV;
die "usage: $0 OLD.mmdb NEW.mmdb\n" unless $old && $new;

my %types = (
    continent          => 'map',
    country            => 'map',
    registered_country => 'map',
    code               => 'utf8_string',
    iso_code           => 'utf8_string',
    geoname_id         => 'uint32',
);

sub rec {
    my ($cont, $cc) = @_;
    return { continent => { code => $cont, geoname_id => 1 },
             country => { iso_code => $cc, geoname_id => 2 },
             registered_country => { iso_code => $cc, geoname_id => 2 } };
}

# Wider networks first: a later, more specific insert overrides inside it.
my @old = (
    [ '11.0.0.0/16',    rec('EU', 'DE') ],
    [ '11.1.0.0/16',    rec('NA', 'US') ],
    [ '2a00:1000::/32', rec('EU', 'DE') ],
    [ '2600:1000::/32', rec('NA', 'US') ],
);
my @new = (
    [ '11.0.0.0/16',         rec('EU', 'DE') ],
    [ '11.0.0.0/24',         rec('EU', 'FR') ],   # DE -> FR: still Europe
    [ '11.0.128.0/17',       rec('NA', 'US') ],   # DE -> US
    [ '11.1.0.0/16',         rec('NA', 'US') ],
    [ '12.0.0.0/24',         rec('EU', 'FR') ],   # unknown -> FR
    [ '2a00:1000::/32',      rec('EU', 'DE') ],
    [ '2a00:1000:8000::/33', rec('NA', 'US') ],   # DE -> US
    # 2600:1000::/32 dropped: US -> unknown
);

sub write_db {
    my ($out, $nets) = @_;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => 6,
        record_size              => 24,
        database_type            => 'GeoIP2-Country',
        languages                => ['en'],
        description              => { en => 'geocast geodiff test data' },
        map_key_type_callback    => sub { $types{ $_[0] } // 'utf8_string' },
        alias_ipv6_to_ipv4       => 1,
        remove_reserved_networks => 0,
    );
    $tree->insert_network($_->[0], $_->[1]) for @$nets;
    open my $fh, '>:raw', "$out.tmp" or die "$out.tmp: $!\n";
    $tree->write_tree($fh);
    close $fh or die "$out.tmp: $!\n";
    rename "$out.tmp", $out or die "rename $out: $!\n";
}

write_db($old, \@old);
write_db($new, \@new);
