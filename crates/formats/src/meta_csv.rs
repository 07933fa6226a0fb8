//! Meta CSV import (in progress).
