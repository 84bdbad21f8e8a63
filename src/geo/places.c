/*
 * Places: continents, countries (built-in centroid table), subdivisions found in the
 * loaded data, and named regions; plus the haversine distance. All tables are static
 * and read-only. See docs/geoip.md for the full list and the midpoints.
 */
#include "geo/geo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "geo/geo_internal.h"

/* ---- continents ----------------------------------------------------------------------- */

static const struct {
    const char *code, *alias, *name;
    double lat, lon;
} continents[] = {
    {"AF", "afr", "Africa", 7.19, 21.09},
    {"AN", "ant", "Antarctica", -75.0, 0.0},
    {"AS", "asi", "Asia", 34.05, 100.62},
    {"EU", "eur", "Europe", 50.0, 10.0},
    {"NA", "nam", "North America", 40.0, -100.0},
    {"OC", "oce", "Oceania", -25.0, 140.0},
    {"SA", "sam", "South America", -15.0, -60.0},
};

/* ---- countries: ISO 3166-1 alpha-2 (+ XK, used by MaxMind for Kosovo), sorted --------- */

static const struct country {
    char code[3];
    char continent[3];
    double lat, lon; /* approximate geographic centroid */
    const char *name;
} countries[] = {
    {"AD", "EU", 42.55, 1.60, "Andorra"},
    {"AE", "AS", 23.42, 53.85, "United Arab Emirates"},
    {"AF", "AS", 33.94, 67.71, "Afghanistan"},
    {"AG", "NA", 17.06, -61.80, "Antigua and Barbuda"},
    {"AI", "NA", 18.22, -63.07, "Anguilla"},
    {"AL", "EU", 41.15, 20.17, "Albania"},
    {"AM", "AS", 40.07, 45.04, "Armenia"},
    {"AO", "AF", -11.20, 17.87, "Angola"},
    {"AQ", "AN", -75.25, -0.07, "Antarctica"},
    {"AR", "SA", -38.42, -63.62, "Argentina"},
    {"AS", "OC", -14.27, -170.13, "American Samoa"},
    {"AT", "EU", 47.52, 14.55, "Austria"},
    {"AU", "OC", -25.27, 133.78, "Australia"},
    {"AW", "NA", 12.52, -69.97, "Aruba"},
    {"AX", "EU", 60.18, 19.92, "Aland Islands"},
    {"AZ", "AS", 40.14, 47.58, "Azerbaijan"},
    {"BA", "EU", 43.92, 17.68, "Bosnia and Herzegovina"},
    {"BB", "NA", 13.19, -59.54, "Barbados"},
    {"BD", "AS", 23.68, 90.36, "Bangladesh"},
    {"BE", "EU", 50.50, 4.47, "Belgium"},
    {"BF", "AF", 12.24, -1.56, "Burkina Faso"},
    {"BG", "EU", 42.73, 25.49, "Bulgaria"},
    {"BH", "AS", 25.93, 50.64, "Bahrain"},
    {"BI", "AF", -3.37, 29.92, "Burundi"},
    {"BJ", "AF", 9.31, 2.32, "Benin"},
    {"BL", "NA", 17.90, -62.83, "Saint Barthelemy"},
    {"BM", "NA", 32.32, -64.76, "Bermuda"},
    {"BN", "AS", 4.54, 114.73, "Brunei"},
    {"BO", "SA", -16.29, -63.59, "Bolivia"},
    {"BQ", "NA", 12.18, -68.24, "Bonaire, Sint Eustatius and Saba"},
    {"BR", "SA", -14.24, -51.93, "Brazil"},
    {"BS", "NA", 25.03, -77.40, "Bahamas"},
    {"BT", "AS", 27.51, 90.43, "Bhutan"},
    {"BV", "AN", -54.42, 3.41, "Bouvet Island"},
    {"BW", "AF", -22.33, 24.68, "Botswana"},
    {"BY", "EU", 53.71, 27.95, "Belarus"},
    {"BZ", "NA", 17.19, -88.50, "Belize"},
    {"CA", "NA", 56.13, -106.35, "Canada"},
    {"CC", "AS", -12.16, 96.87, "Cocos (Keeling) Islands"},
    {"CD", "AF", -4.04, 21.76, "Congo (Democratic Republic)"},
    {"CF", "AF", 6.61, 20.94, "Central African Republic"},
    {"CG", "AF", -0.23, 15.83, "Congo"},
    {"CH", "EU", 46.82, 8.23, "Switzerland"},
    {"CI", "AF", 7.54, -5.55, "Cote d'Ivoire"},
    {"CK", "OC", -21.24, -159.78, "Cook Islands"},
    {"CL", "SA", -35.68, -71.54, "Chile"},
    {"CM", "AF", 7.37, 12.35, "Cameroon"},
    {"CN", "AS", 35.86, 104.20, "China"},
    {"CO", "SA", 4.57, -74.30, "Colombia"},
    {"CR", "NA", 9.75, -83.75, "Costa Rica"},
    {"CU", "NA", 21.52, -77.78, "Cuba"},
    {"CV", "AF", 16.00, -24.01, "Cabo Verde"},
    {"CW", "NA", 12.17, -68.99, "Curacao"},
    {"CX", "AS", -10.45, 105.69, "Christmas Island"},
    {"CY", "EU", 35.13, 33.43, "Cyprus"},
    {"CZ", "EU", 49.82, 15.47, "Czechia"},
    {"DE", "EU", 51.17, 10.45, "Germany"},
    {"DJ", "AF", 11.83, 42.59, "Djibouti"},
    {"DK", "EU", 56.26, 9.50, "Denmark"},
    {"DM", "NA", 15.41, -61.37, "Dominica"},
    {"DO", "NA", 18.74, -70.16, "Dominican Republic"},
    {"DZ", "AF", 28.03, 1.66, "Algeria"},
    {"EC", "SA", -1.83, -78.18, "Ecuador"},
    {"EE", "EU", 58.60, 25.01, "Estonia"},
    {"EG", "AF", 26.82, 30.80, "Egypt"},
    {"EH", "AF", 24.22, -12.89, "Western Sahara"},
    {"ER", "AF", 15.18, 39.78, "Eritrea"},
    {"ES", "EU", 40.46, -3.75, "Spain"},
    {"ET", "AF", 9.15, 40.49, "Ethiopia"},
    {"FI", "EU", 61.92, 25.75, "Finland"},
    {"FJ", "OC", -16.58, 179.41, "Fiji"},
    {"FK", "SA", -51.80, -59.52, "Falkland Islands"},
    {"FM", "OC", 7.43, 150.55, "Micronesia"},
    {"FO", "EU", 61.89, -6.91, "Faroe Islands"},
    {"FR", "EU", 46.23, 2.21, "France"},
    {"GA", "AF", -0.80, 11.61, "Gabon"},
    {"GB", "EU", 55.38, -3.44, "United Kingdom"},
    {"GD", "NA", 12.26, -61.60, "Grenada"},
    {"GE", "AS", 42.32, 43.36, "Georgia"},
    {"GF", "SA", 3.93, -53.13, "French Guiana"},
    {"GG", "EU", 49.47, -2.59, "Guernsey"},
    {"GH", "AF", 7.95, -1.02, "Ghana"},
    {"GI", "EU", 36.14, -5.35, "Gibraltar"},
    {"GL", "NA", 71.71, -42.60, "Greenland"},
    {"GM", "AF", 13.44, -15.31, "Gambia"},
    {"GN", "AF", 9.95, -9.70, "Guinea"},
    {"GP", "NA", 16.99, -62.07, "Guadeloupe"},
    {"GQ", "AF", 1.65, 10.27, "Equatorial Guinea"},
    {"GR", "EU", 39.07, 21.82, "Greece"},
    {"GS", "AN", -54.43, -36.59, "South Georgia and the South Sandwich Islands"},
    {"GT", "NA", 15.78, -90.23, "Guatemala"},
    {"GU", "OC", 13.44, 144.79, "Guam"},
    {"GW", "AF", 11.80, -15.18, "Guinea-Bissau"},
    {"GY", "SA", 4.86, -58.93, "Guyana"},
    {"HK", "AS", 22.40, 114.11, "Hong Kong"},
    {"HM", "AN", -53.08, 73.50, "Heard Island and McDonald Islands"},
    {"HN", "NA", 15.20, -86.24, "Honduras"},
    {"HR", "EU", 45.10, 15.20, "Croatia"},
    {"HT", "NA", 18.97, -72.29, "Haiti"},
    {"HU", "EU", 47.16, 19.50, "Hungary"},
    {"ID", "AS", -0.79, 113.92, "Indonesia"},
    {"IE", "EU", 53.41, -8.24, "Ireland"},
    {"IL", "AS", 31.05, 34.85, "Israel"},
    {"IM", "EU", 54.24, -4.55, "Isle of Man"},
    {"IN", "AS", 20.59, 78.96, "India"},
    {"IO", "AS", -6.34, 71.88, "British Indian Ocean Territory"},
    {"IQ", "AS", 33.22, 43.68, "Iraq"},
    {"IR", "AS", 32.43, 53.69, "Iran"},
    {"IS", "EU", 64.96, -19.02, "Iceland"},
    {"IT", "EU", 41.87, 12.57, "Italy"},
    {"JE", "EU", 49.21, -2.13, "Jersey"},
    {"JM", "NA", 18.11, -77.30, "Jamaica"},
    {"JO", "AS", 30.59, 36.24, "Jordan"},
    {"JP", "AS", 36.20, 138.25, "Japan"},
    {"KE", "AF", -0.02, 37.91, "Kenya"},
    {"KG", "AS", 41.20, 74.77, "Kyrgyzstan"},
    {"KH", "AS", 12.57, 104.99, "Cambodia"},
    {"KI", "OC", -3.37, -168.73, "Kiribati"},
    {"KM", "AF", -11.88, 43.87, "Comoros"},
    {"KN", "NA", 17.36, -62.78, "Saint Kitts and Nevis"},
    {"KP", "AS", 40.34, 127.51, "North Korea"},
    {"KR", "AS", 35.91, 127.77, "South Korea"},
    {"KW", "AS", 29.31, 47.48, "Kuwait"},
    {"KY", "NA", 19.51, -80.57, "Cayman Islands"},
    {"KZ", "AS", 48.02, 66.92, "Kazakhstan"},
    {"LA", "AS", 19.86, 102.50, "Laos"},
    {"LB", "AS", 33.85, 35.86, "Lebanon"},
    {"LC", "NA", 13.91, -60.98, "Saint Lucia"},
    {"LI", "EU", 47.17, 9.56, "Liechtenstein"},
    {"LK", "AS", 7.87, 80.77, "Sri Lanka"},
    {"LR", "AF", 6.43, -9.43, "Liberia"},
    {"LS", "AF", -29.61, 28.23, "Lesotho"},
    {"LT", "EU", 55.17, 23.88, "Lithuania"},
    {"LU", "EU", 49.82, 6.13, "Luxembourg"},
    {"LV", "EU", 56.88, 24.60, "Latvia"},
    {"LY", "AF", 26.34, 17.23, "Libya"},
    {"MA", "AF", 31.79, -7.09, "Morocco"},
    {"MC", "EU", 43.75, 7.41, "Monaco"},
    {"MD", "EU", 47.41, 28.37, "Moldova"},
    {"ME", "EU", 42.71, 19.37, "Montenegro"},
    {"MF", "NA", 18.08, -63.05, "Saint Martin"},
    {"MG", "AF", -18.77, 46.87, "Madagascar"},
    {"MH", "OC", 7.13, 171.18, "Marshall Islands"},
    {"MK", "EU", 41.61, 21.75, "North Macedonia"},
    {"ML", "AF", 17.57, -4.00, "Mali"},
    {"MM", "AS", 21.91, 95.96, "Myanmar"},
    {"MN", "AS", 46.86, 103.85, "Mongolia"},
    {"MO", "AS", 22.20, 113.54, "Macao"},
    {"MP", "OC", 17.33, 145.38, "Northern Mariana Islands"},
    {"MQ", "NA", 14.64, -61.02, "Martinique"},
    {"MR", "AF", 21.01, -10.94, "Mauritania"},
    {"MS", "NA", 16.74, -62.19, "Montserrat"},
    {"MT", "EU", 35.94, 14.38, "Malta"},
    {"MU", "AF", -20.35, 57.55, "Mauritius"},
    {"MV", "AS", 3.20, 73.22, "Maldives"},
    {"MW", "AF", -13.25, 34.30, "Malawi"},
    {"MX", "NA", 23.63, -102.55, "Mexico"},
    {"MY", "AS", 4.21, 101.98, "Malaysia"},
    {"MZ", "AF", -18.67, 35.53, "Mozambique"},
    {"NA", "AF", -22.96, 18.49, "Namibia"},
    {"NC", "OC", -20.90, 165.62, "New Caledonia"},
    {"NE", "AF", 17.61, 8.08, "Niger"},
    {"NF", "OC", -29.04, 167.95, "Norfolk Island"},
    {"NG", "AF", 9.08, 8.68, "Nigeria"},
    {"NI", "NA", 12.87, -85.21, "Nicaragua"},
    {"NL", "EU", 52.13, 5.29, "Netherlands"},
    {"NO", "EU", 60.47, 8.47, "Norway"},
    {"NP", "AS", 28.39, 84.12, "Nepal"},
    {"NR", "OC", -0.52, 166.93, "Nauru"},
    {"NU", "OC", -19.05, -169.87, "Niue"},
    {"NZ", "OC", -40.90, 174.89, "New Zealand"},
    {"OM", "AS", 21.51, 55.92, "Oman"},
    {"PA", "NA", 8.54, -80.78, "Panama"},
    {"PE", "SA", -9.19, -75.02, "Peru"},
    {"PF", "OC", -17.68, -149.41, "French Polynesia"},
    {"PG", "OC", -6.31, 143.96, "Papua New Guinea"},
    {"PH", "AS", 12.88, 121.77, "Philippines"},
    {"PK", "AS", 30.38, 69.35, "Pakistan"},
    {"PL", "EU", 51.92, 19.15, "Poland"},
    {"PM", "NA", 46.94, -56.27, "Saint Pierre and Miquelon"},
    {"PN", "OC", -24.70, -127.44, "Pitcairn"},
    {"PR", "NA", 18.22, -66.59, "Puerto Rico"},
    {"PS", "AS", 31.95, 35.23, "Palestine"},
    {"PT", "EU", 39.40, -8.22, "Portugal"},
    {"PW", "OC", 7.51, 134.58, "Palau"},
    {"PY", "SA", -23.44, -58.44, "Paraguay"},
    {"QA", "AS", 25.35, 51.18, "Qatar"},
    {"RE", "AF", -21.12, 55.54, "Reunion"},
    {"RO", "EU", 45.94, 24.97, "Romania"},
    {"RS", "EU", 44.02, 21.01, "Serbia"},
    {"RU", "EU", 61.52, 105.32, "Russia"},
    {"RW", "AF", -1.94, 29.87, "Rwanda"},
    {"SA", "AS", 23.89, 45.08, "Saudi Arabia"},
    {"SB", "OC", -9.65, 160.16, "Solomon Islands"},
    {"SC", "AF", -4.68, 55.49, "Seychelles"},
    {"SD", "AF", 12.86, 30.22, "Sudan"},
    {"SE", "EU", 60.13, 18.64, "Sweden"},
    {"SG", "AS", 1.35, 103.82, "Singapore"},
    {"SH", "AF", -24.14, -10.03, "Saint Helena"},
    {"SI", "EU", 46.15, 14.99, "Slovenia"},
    {"SJ", "EU", 77.55, 23.67, "Svalbard and Jan Mayen"},
    {"SK", "EU", 48.67, 19.70, "Slovakia"},
    {"SL", "AF", 8.46, -11.78, "Sierra Leone"},
    {"SM", "EU", 43.94, 12.46, "San Marino"},
    {"SN", "AF", 14.50, -14.45, "Senegal"},
    {"SO", "AF", 5.15, 46.20, "Somalia"},
    {"SR", "SA", 3.92, -56.03, "Suriname"},
    {"SS", "AF", 6.88, 31.31, "South Sudan"},
    {"ST", "AF", 0.19, 6.61, "Sao Tome and Principe"},
    {"SV", "NA", 13.79, -88.90, "El Salvador"},
    {"SX", "NA", 18.04, -63.07, "Sint Maarten"},
    {"SY", "AS", 34.80, 38.10, "Syria"},
    {"SZ", "AF", -26.52, 31.47, "Eswatini"},
    {"TC", "NA", 21.69, -71.80, "Turks and Caicos Islands"},
    {"TD", "AF", 15.45, 18.73, "Chad"},
    {"TF", "AN", -49.28, 69.35, "French Southern Territories"},
    {"TG", "AF", 8.62, 0.82, "Togo"},
    {"TH", "AS", 15.87, 100.99, "Thailand"},
    {"TJ", "AS", 38.86, 71.28, "Tajikistan"},
    {"TK", "OC", -8.97, -171.86, "Tokelau"},
    {"TL", "AS", -8.87, 125.73, "Timor-Leste"},
    {"TM", "AS", 38.97, 59.56, "Turkmenistan"},
    {"TN", "AF", 33.89, 9.54, "Tunisia"},
    {"TO", "OC", -21.18, -175.20, "Tonga"},
    {"TR", "AS", 38.96, 35.24, "Turkey"},
    {"TT", "NA", 10.69, -61.22, "Trinidad and Tobago"},
    {"TV", "OC", -7.11, 177.65, "Tuvalu"},
    {"TW", "AS", 23.70, 120.96, "Taiwan"},
    {"TZ", "AF", -6.37, 34.89, "Tanzania"},
    {"UA", "EU", 48.38, 31.17, "Ukraine"},
    {"UG", "AF", 1.37, 32.29, "Uganda"},
    {"UM", "OC", 19.28, 166.65, "United States Minor Outlying Islands"},
    {"US", "NA", 39.83, -98.58, "United States"},
    {"UY", "SA", -32.52, -55.77, "Uruguay"},
    {"UZ", "AS", 41.38, 64.59, "Uzbekistan"},
    {"VA", "EU", 41.90, 12.45, "Vatican City"},
    {"VC", "NA", 12.98, -61.29, "Saint Vincent and the Grenadines"},
    {"VE", "SA", 6.42, -66.59, "Venezuela"},
    {"VG", "NA", 18.42, -64.64, "British Virgin Islands"},
    {"VI", "NA", 18.34, -64.90, "U.S. Virgin Islands"},
    {"VN", "AS", 14.06, 108.28, "Vietnam"},
    {"VU", "OC", -15.38, 166.96, "Vanuatu"},
    {"WF", "OC", -13.77, -177.16, "Wallis and Futuna"},
    {"WS", "OC", -13.76, -172.10, "Samoa"},
    {"XK", "EU", 42.60, 20.90, "Kosovo"},
    {"YE", "AS", 15.55, 48.52, "Yemen"},
    {"YT", "AF", -12.83, 45.17, "Mayotte"},
    {"ZA", "AF", -30.56, 22.94, "South Africa"},
    {"ZM", "AF", -13.13, 27.85, "Zambia"},
    {"ZW", "AF", -19.02, 29.15, "Zimbabwe"},
};

static int cmp_country(const void *key, const void *elem)
{
    return strcasecmp(key, ((const struct country *)elem)->code);
}

static const struct country *find_country(const char *cc)
{
    if (strlen(cc) != 2)
        return NULL;
    return bsearch(cc, countries, ARRAY_SIZE(countries), sizeof(countries[0]), cmp_country);
}

bool geo_country_info(const char *cc, double *lat, double *lon, char *continent)
{
    const struct country *c = find_country(cc);
    if (!c)
        return false;
    if (lat)
        *lat = c->lat;
    if (lon)
        *lon = c->lon;
    if (continent)
        memcpy(continent, c->continent, 3);
    return true;
}

/* ---- named regions -------------------------------------------------------------------- *
 * Members: "@XX" a continent, "XX" a country, "XX-YYY" a subdivision. The midpoint is
 * explicit: roughly where the networks (and the data centres serving them) are. */

struct geo_region {
    const char *name;
    double lat, lon;
    const char *const *members;
};

static const char *const m_us_east[] = {
    "US-CT", "US-DC", "US-DE", "US-FL", "US-GA", "US-MA", "US-MD", "US-ME", "US-NC", "US-NH",
    "US-NJ", "US-NY", "US-PA", "US-RI", "US-SC", "US-VA", "US-VT", "US-WV", "US-OH", "US-MI",
    "US-IN", "US-KY", "US-TN", "US-AL", "PR", "VI", NULL};
static const char *const m_us_central[] = {
    "US-IL", "US-WI", "US-MN", "US-IA", "US-MO", "US-AR", "US-LA", "US-MS", "US-OK",
    "US-KS", "US-NE", "US-SD", "US-ND", "US-TX", NULL};
static const char *const m_us_west[] = {
    "US-MT", "US-WY", "US-CO", "US-NM", "US-AZ", "US-UT", "US-ID", "US-NV", "US-WA",
    "US-OR", "US-CA", "US-AK", "US-HI", "GU", "MP", "AS", "UM", NULL};
static const char *const m_us[] = {"US", "PR", "VI", "GU", "MP", "AS", "UM", NULL};
static const char *const m_canada[] = {"CA", "PM", NULL};
static const char *const m_mexico_central[] = {
    "MX", "GT", "BZ", "SV", "HN", "NI", "CR", "PA", NULL};
static const char *const m_caribbean[] = {
    "AG", "AI", "AW", "BB", "BL", "BM", "BQ", "BS", "CU", "CW", "DM", "DO", "GD", "GP", "HT",
    "JM", "KN", "KY", "LC", "MF", "MQ", "MS", "PR", "SX", "TC", "TT", "VC", "VG", "VI", NULL};
static const char *const m_south_america[] = {"@SA", NULL};
static const char *const m_europe[] = {"@EU", NULL};
static const char *const m_eu_west[] = {
    "GB", "IE", "FR", "BE", "NL", "LU", "MC", "IM", "JE", "GG", NULL};
static const char *const m_eu_central[] = {
    "DE", "AT", "CH", "LI", "CZ", "PL", "SK", "HU", "SI", NULL};
static const char *const m_eu_north[] = {
    "SE", "NO", "FI", "DK", "IS", "EE", "LV", "LT", "FO", "AX", "SJ", NULL};
static const char *const m_eu_south[] = {
    "IT", "ES", "PT", "GR", "MT", "CY", "HR", "SM", "VA", "AD", "GI", "AL", "MK", "ME", "BA",
    "RS", "XK", NULL};
static const char *const m_eu_east[] = {"RO", "BG", "UA", "BY", "MD", "RU", NULL};
static const char *const m_asia[] = {"@AS", NULL};
static const char *const m_asia_east[] = {"CN", "JP", "KR", "KP", "TW", "HK", "MO", "MN", NULL};
static const char *const m_asia_southeast[] = {
    "SG", "MY", "TH", "VN", "PH", "ID", "BN", "KH", "LA", "MM", "TL", NULL};
static const char *const m_asia_south[] = {
    "IN", "PK", "BD", "LK", "NP", "BT", "MV", "AF", "IO", NULL};
static const char *const m_asia_central[] = {"KZ", "UZ", "TM", "KG", "TJ", NULL};
static const char *const m_asia_pacific[] = {
    "CN", "JP", "KR", "KP", "TW", "HK", "MO", "MN", "SG", "MY", "TH", "VN", "PH", "ID", "BN",
    "KH", "LA", "MM", "TL", "IN", "PK", "BD", "LK", "NP", "BT", "MV", "@OC", NULL};
static const char *const m_middle_east[] = {
    "AE", "SA", "QA", "BH", "KW", "OM", "YE", "IQ", "IR", "IL", "PS", "JO", "LB", "SY", "TR",
    "EG", "CY", "GE", "AM", "AZ", NULL};
static const char *const m_africa[] = {"@AF", NULL};
static const char *const m_oceania[] = {"@OC", NULL};
static const char *const m_australia_nz[] = {"AU", "NZ", NULL};
static const char *const m_north_america[] = {"@NA", NULL};

static const geo_region_t regions[] = {
    {"us-east", 38.0, -79.0, m_us_east},
    {"us-central", 38.0, -94.5, m_us_central},
    {"us-west", 40.0, -118.0, m_us_west},
    {"usa", 39.83, -98.58, m_us},
    {"canada", 45.5, -76.0, m_canada},
    {"north-america", 40.0, -100.0, m_north_america},
    {"central-america", 17.0, -92.0, m_mexico_central},
    {"caribbean", 18.0, -70.0, m_caribbean},
    {"south-america", -15.0, -55.0, m_south_america},
    {"europe", 50.0, 10.0, m_europe},
    {"eu-west", 50.5, -0.5, m_eu_west},
    {"eu-central", 50.1, 12.0, m_eu_central},
    {"eu-north", 60.0, 18.0, m_eu_north},
    {"eu-south", 41.0, 10.0, m_eu_south},
    {"eu-east", 50.0, 30.0, m_eu_east},
    {"asia", 34.05, 100.62, m_asia},
    {"asia-pacific", 10.0, 115.0, m_asia_pacific},
    {"asia-east", 33.0, 122.0, m_asia_east},
    {"asia-southeast", 5.0, 108.0, m_asia_southeast},
    {"asia-south", 22.0, 78.0, m_asia_south},
    {"asia-central", 43.0, 68.0, m_asia_central},
    {"middle-east", 27.0, 45.0, m_middle_east},
    {"africa", 7.19, 21.09, m_africa},
    {"oceania", -25.0, 140.0, m_oceania},
    {"australia-nz", -30.0, 145.0, m_australia_nz},
};

size_t geo_region_count(void) { return ARRAY_SIZE(regions); }

const char *geo_region_name(size_t i) { return i < ARRAY_SIZE(regions) ? regions[i].name : NULL; }

/* ---- lookup by name ------------------------------------------------------------------- */

static int find_continent(const char *s, geo_place_t *out, bool aliases)
{
    for (size_t i = 0; i < ARRAY_SIZE(continents); i++) {
        if (strcasecmp(s, continents[i].code) == 0 ||
            (aliases && strcasecmp(s, continents[i].alias) == 0)) {
            memset(out, 0, sizeof(*out));
            out->kind = GEO_PLACE_CONTINENT;
            memcpy(out->code, continents[i].code, 3);
            out->name = continents[i].name;
            out->lat = continents[i].lat;
            out->lon = continents[i].lon;
            return 0;
        }
    }
    return ERR_NOTFOUND;
}

static int find_country_place(const char *s, geo_place_t *out)
{
    const struct country *c = find_country(s);
    if (!c)
        return ERR_NOTFOUND;
    memset(out, 0, sizeof(*out));
    out->kind = GEO_PLACE_COUNTRY;
    memcpy(out->code, c->code, 3);
    out->name = c->name;
    out->lat = c->lat;
    out->lon = c->lon;
    return 0;
}

static int find_subdivision(const geo_db_t *db, const char *s, geo_place_t *out)
{
    const char *dash = strchr(s, '-');
    if (!dash || dash - s != 2 || strlen(dash + 1) < 1 || strlen(dash + 1) > 3)
        return ERR_NOTFOUND;
    const geo_subdiv_t *sd = geo_db_subdiv(db, s);
    if (!sd)
        return ERR_NOTFOUND;
    memset(out, 0, sizeof(*out));
    out->kind = GEO_PLACE_SUBDIVISION;
    memcpy(out->code, sd->code, sizeof(out->code));
    out->name = sd->code;
    out->lat = sd->lat;
    out->lon = sd->lon;
    return 0;
}

static int find_region(const char *s, geo_place_t *out)
{
    for (size_t i = 0; i < ARRAY_SIZE(regions); i++) {
        if (strcasecmp(s, regions[i].name) == 0) {
            memset(out, 0, sizeof(*out));
            out->kind = GEO_PLACE_REGION;
            out->name = regions[i].name;
            out->lat = regions[i].lat;
            out->lon = regions[i].lon;
            out->region = &regions[i];
            return 0;
        }
    }
    return ERR_NOTFOUND;
}

static bool has_prefix(const char *s, const char *p, const char **rest)
{
    size_t n = strlen(p);
    if (strncasecmp(s, p, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

int geo_place_find(const geo_db_t *db, const char *name, geo_place_t *out)
{
    const char *rest;
    if (!name[0] || strlen(name) > 64)
        return ERR_INVAL;
    if (has_prefix(name, "continent:", &rest))
        return find_continent(rest, out, true);
    if (has_prefix(name, "country:", &rest))
        return find_country_place(rest, out);
    if (has_prefix(name, "subdivision:", &rest))
        return db ? find_subdivision(db, rest, out) : ERR_NOTFOUND;
    if (has_prefix(name, "region:", &rest))
        return find_region(rest, out);
    if (strchr(name, ':'))
        return ERR_INVAL;
    if (find_continent(name, out, true) == 0)
        return 0;
    if (find_country_place(name, out) == 0)
        return 0;
    if (find_region(name, out) == 0)
        return 0;
    if (db && find_subdivision(db, name, out) == 0)
        return 0;
    return ERR_NOTFOUND;
}

static bool member_match(const char *m, const geo_location_t *loc)
{
    if (m[0] == '@')
        return strcmp(m + 1, loc->continent) == 0;
    if (m[2] == '\0')
        return strcmp(m, loc->country) == 0;
    return strcmp(m, loc->subdivision) == 0;
}

bool geo_place_contains(const geo_place_t *place, const geo_location_t *loc)
{
    switch (place->kind) {
    case GEO_PLACE_CONTINENT:
        return loc->continent[0] && strcmp(place->code, loc->continent) == 0;
    case GEO_PLACE_COUNTRY:
        return loc->country[0] && strcmp(place->code, loc->country) == 0;
    case GEO_PLACE_SUBDIVISION:
        return loc->subdivision[0] && strcmp(place->code, loc->subdivision) == 0;
    case GEO_PLACE_REGION:
        if (!place->region)
            return false;
        for (const char *const *m = place->region->members; *m; m++) {
            if (member_match(*m, loc))
                return true;
        }
        return false;
    }
    return false;
}

/* ---- distance ------------------------------------------------------------------------- */

double geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    const double r = 6371.0088, d2r = M_PI / 180.0;
    double dlat = (lat2 - lat1) * d2r, dlon = (lon2 - lon1) * d2r;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * d2r) * cos(lat2 * d2r) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1)
        a = 1;
    return 2 * r * asin(sqrt(a));
}
