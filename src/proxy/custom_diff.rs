//! Custom difficulty (RFC section 14): a `+N` suffix on the login wins over the global
//! `custom-diff`, which wins over the pool's difficulty.

/// Splits `WALLET+50000` into `("WALLET", 50000)`. Without a valid suffix the login is
/// kept whole and the global difficulty applies (0 = none).
pub fn split(login: &str, global: u64) -> (&str, u64) {
    if let Some((user, suffix)) = login.rsplit_once('+') {
        let digits = !suffix.is_empty() && suffix.len() <= 19 && suffix.bytes().all(|c| c.is_ascii_digit());
        if let (true, false, Ok(diff)) = (digits, user.is_empty(), suffix.parse::<u64>())
            && diff > 0
        {
            return (user, diff);
        }
    }
    (login, global)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn suffix_sets_the_difficulty_and_is_stripped() {
        assert_eq!(split("WALLET+50000", 0), ("WALLET", 50000));
        assert_eq!(split("WALLET+50000", 10000), ("WALLET", 50000));
    }

    #[test]
    fn a_bad_suffix_is_left_alone() {
        assert_eq!(split("WALLET+abc", 0), ("WALLET+abc", 0));
        assert_eq!(split("WALLET+", 0), ("WALLET+", 0));
        assert_eq!(split("+500", 0), ("+500", 0));
        assert_eq!(split("WALLET+0", 0), ("WALLET+0", 0));
        assert_eq!(split("WALLET+99999999999999999999", 0), ("WALLET+99999999999999999999", 0));
    }

    #[test]
    fn global_difficulty_applies_without_a_suffix() {
        assert_eq!(split("WALLET", 10000), ("WALLET", 10000));
        assert_eq!(split("WALLET", 0), ("WALLET", 0));
    }
}
