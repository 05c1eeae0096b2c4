// mini-MIAS annotations (Info.txt) and the rules the "mini-mias" source applies to them. Stateless
// free functions; thread-safe.
//
// The source reads <root>/Info.txt and, for each film id, the first of these that exists:
//   <root>/images/<id>.png, <root>/images/<id>.pgm, <root>/<id>.png, <root>/<id>.pgm,
//   <root>/pgm-originals/<id>.png, <root>/pgm-originals/<id>.pgm
// (folders in that order, PNG before PGM in each). Masses (CIRC, SPIC, MISC) are filled circles;
// calcifications, distortions and asymmetries are films without a mass, or left out with
// data.mias_other_abnormalities EXCLUDE. A mass row without coordinates (mdb059) is skipped with a
// warning; a film left with no mass to draw is left out, since calling it "no mass" would be a
// wrong label. Every film goes to the training split; patients are film pairs.
#pragma once

#include <string>
#include <vector>

namespace hds::data {

// One row of Info.txt: `id tissue class [severity [x y radius]]`.
struct MiasAnnotation {
  std::string film_id;      // "mdb001"
  char tissue = 0;          // F fatty, G fatty-glandular, D dense-glandular
  std::string abnormality;  // CALC, CIRC, SPIC, MISC, ARCH, ASYM or NORM
  char severity = 0;        // B benign, M malignant; 0 for NORM
  bool has_centre = false;  // false where the row gives no coordinates (mdb059, "*NOTE 3*" rows)
  int x = 0;                // centre column, pixels
  int y = 0;                // centre height above the bottom row (the origin is bottom-left)
  int radius = 0;           // pixels, positive
  int line = 0;             // 1-based line of the row in Info.txt
};

// The rows of Info.txt `text` (named `name` in errors), in file order. Lines whose first word does
// not start with "mdb" are the file's prose and are ignored; every other line must be a valid row,
// else DataError "<name>:<line>: <problem>". After the severity a row has either nothing, three
// integers x y radius, or the file's "*NOTE 3*" (coordinates omitted).
std::vector<MiasAnnotation> parse_mias_info(const std::string& text, const std::string& name);

// CIRC, SPIC and MISC rows are masses.
bool is_mias_mass(const MiasAnnotation& annotation);

// CALC, ARCH and ASYM rows: abnormalities that are not masses.
bool is_mias_other_abnormality(const MiasAnnotation& annotation);

// The patient of a film: Info.txt lists films in pairs (left and right breast), so mdb001 and
// mdb002 are patient "mias-001", mdb003 and mdb004 "mias-002": number (NNN + 1) / 2.
std::string mias_patient(const std::string& film_id);

}  // namespace hds::data
