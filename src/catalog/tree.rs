//! The parent tree of targets: inserting new targets and linking them to
//! their nearest ancestor target (`targets.parent_id`), for `import` and
//! `scan_tape` alike, and what happens then to the parent's file rows at or
//! below a new child ([`ParentFiles`]). A parent's archive excludes its
//! child targets (`tar --exclude`), so a parent's rows should describe
//! exactly its tar: the one it will write, or the one already on tape.

use anyhow::Result;
use rusqlite::{Connection, params};

use super::{Catalog, is_under, name_bytes, name_value};

/// What linking a new target below a parent does to the parent's file rows
/// at or below the new target's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentFiles {
    /// `import`: the parent's tar is still to be written and will exclude
    /// the new child, so the parent's rows there are dropped (import refuses
    /// a target inside a parent already on tape with its files, so no
    /// written parent loses rows through a new target). Every target's
    /// parent is derived afresh, so links a legacy catalogue lacks (the old
    /// tool left a child imported before its parent unlinked) are repaired
    /// on the next import, and each parent's rows under its children dropped
    /// — except where such a repaired link hangs a child under a parent
    /// already on tape: that tape file was written without the link, so it
    /// holds the child's files, and the parent keeps its rows for them.
    Exclude,
    /// `scan_tape` (recording from tape): a parent already on tape keeps its
    /// rows, since its tape file holds what it held when it was written (one
    /// written before the child was a target holds the child's files too,
    /// and confirm and restore must find them); a parent not yet on tape
    /// (adopting into a live catalogue) will exclude the child, so its rows
    /// there are dropped as for an import. Only the new target's links
    /// change: it takes its nearest ancestor as parent and becomes the parent
    /// of the targets below it whose parent was further up.
    AsWritten,
}

impl Catalog {
    /// Insert targets `names` (`scanned`: their files are known, or come
    /// next in the same transaction) and link them into the parent tree,
    /// treating the parents' file rows as `parent_files` says; their ids, in
    /// order. Runs inside the caller's transaction when one is open (a
    /// [`super::Recovery`]), else in one of its own.
    pub fn add_linked_targets(&self, names: &[&[u8]], scanned: bool, parent_files: ParentFiles) -> Result<Vec<i64>> {
        let own = self.conn.is_autocommit().then(|| self.conn.unchecked_transaction()).transpose()?;
        let conn: &Connection = &self.conn;
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            conn.execute("INSERT INTO targets (name, scanned) VALUES (?1, ?2)", params![name_value(name), scanned])?;
            ids.push(conn.last_insert_rowid());
            if parent_files == ParentFiles::AsWritten {
                link_one(conn, conn.last_insert_rowid(), name)?;
            }
        }
        if parent_files == ParentFiles::Exclude {
            relink_all(conn)?;
        }
        if let Some(tx) = own {
            tx.commit()?;
        }
        Ok(ids)
    }
}

/// A target's place in the parent tree.
struct TreeNode {
    id: i64,
    name: Vec<u8>,
    parent: Option<i64>,
}

/// Every target's place in the tree.
fn tree(conn: &Connection) -> Result<Vec<TreeNode>> {
    let mut stmt = conn.prepare("SELECT id, name, parent_id FROM targets")?;
    let rows =
        stmt.query_map([], |r| Ok(TreeNode { id: r.get(0)?, name: name_bytes(r.get_ref(1)?), parent: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The nearest ancestor target of `name` among `all`.
fn nearest<'a>(all: &'a [TreeNode], name: &[u8]) -> Option<&'a TreeNode> {
    all.iter().filter(|t| is_under(name, &t.name)).max_by_key(|t| t.name.len())
}

fn set_parent(conn: &Connection, id: i64, parent: Option<i64>) -> Result<()> {
    conn.prepare_cached("UPDATE targets SET parent_id = ?2 WHERE id = ?1")?.execute(params![id, parent])?;
    Ok(())
}

/// [`ParentFiles::AsWritten`]: link new target `id` (`name`) under its
/// nearest ancestor, hang below it the targets whose parent was further up,
/// and drop its parent's rows under it unless the parent is on tape.
fn link_one(conn: &Connection, id: i64, name: &[u8]) -> Result<()> {
    let all = tree(conn)?;
    let parent = nearest(&all, name);
    set_parent(conn, id, parent.map(|p| p.id))?;
    let len_of = |pid: i64| all.iter().find(|t| t.id == pid).map_or(0, |t| t.name.len());
    for t in &all {
        if is_under(&t.name, name) && t.parent.is_none_or(|p| len_of(p) < name.len()) {
            set_parent(conn, t.id, Some(id))?;
        }
    }
    if let Some(p) = parent
        && !on_tape(conn, p.id)?
    {
        drop_files_under(conn, p.id, &name[p.name.len() + 1..])?;
    }
    Ok(())
}

/// Whether target `id` has a recorded or confirmed backup.
fn on_tape(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM backups WHERE target_id = ?1 AND status IN ('recorded','confirmed'))",
        )?
        .query_row([id], |r| r.get(0))?)
}

/// [`ParentFiles::Exclude`]: set each target's parent to its nearest
/// ancestor target, and drop the file rows each parent holds under a child,
/// unless the link is new and the parent is already on tape.
fn relink_all(conn: &Connection) -> Result<()> {
    let all = tree(conn)?;
    for t in &all {
        let parent = nearest(&all, &t.name);
        let relinked = parent.map(|p| p.id) != t.parent;
        if relinked {
            set_parent(conn, t.id, parent.map(|p| p.id))?;
        }
        if let Some(p) = parent
            && !(relinked && on_tape(conn, p.id)?)
        {
            drop_files_under(conn, p.id, &t.name[p.name.len() + 1..])?;
        }
    }
    Ok(())
}

/// Delete the file rows of target `parent` at or below relative path `rel`.
fn drop_files_under(conn: &Connection, parent: i64, rel: &[u8]) -> Result<()> {
    let mut prefix = rel.to_vec();
    prefix.push(b'/');
    let ids: Vec<i64> = {
        let mut stmt = conn.prepare_cached("SELECT id, name FROM files WHERE target_id = ?1")?;
        let rows = stmt.query_map([parent], |r| Ok((r.get::<_, i64>(0)?, name_bytes(r.get_ref(1)?))))?;
        let mut ids = Vec::new();
        for row in rows {
            let (id, name) = row?;
            if name.starts_with(&prefix) || name == rel {
                ids.push(id);
            }
        }
        ids
    };
    let mut delete = conn.prepare_cached("DELETE FROM files WHERE id = ?1")?;
    for id in ids {
        delete.execute([id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Mode, NewFile};

    /// A fresh catalogue in a temp dir.
    fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("tape.sqlite"), Mode::Create).unwrap();
        (dir, cat)
    }

    /// Target `name` with `files` (and, `on_tape`, a recorded backup).
    fn target_with(cat: &Catalog, name: &str, files: &[&str], on_tape: bool) -> i64 {
        let id = cat.add_linked_targets(&[name.as_bytes()], true, ParentFiles::AsWritten).unwrap()[0];
        let rows: Vec<NewFile> = files
            .iter()
            .map(|f| NewFile { name: f.as_bytes().to_vec(), md5: "0".repeat(32), size: 1, link: None })
            .collect();
        cat.add_scanned_files(id, &rows).unwrap();
        if on_tape {
            let tape = cat.create_recorded_tape(&format!("T{id}"), None, None).unwrap();
            cat.add_recorded_backup(id, &tape, crate::tape_file::TapeFile::new(1)).unwrap();
        }
        id
    }

    fn files(cat: &Catalog, id: i64) -> Vec<String> {
        let mut out = Vec::new();
        cat.each_file(id, |f| {
            out.push(String::from_utf8(f.name).unwrap());
            Ok(())
        })
        .unwrap();
        out
    }

    fn parent(cat: &Catalog, name: &str) -> Option<String> {
        let t = cat.target_by_name(name.as_bytes()).unwrap().unwrap();
        t.parent_id.map(|p| String::from_utf8(cat.target(p).unwrap().name).unwrap())
    }

    const PARENT_FILES: &[&str] = &["c", "c/f", "c/s/g", "cx", "pf"];

    #[test]
    fn import_drops_the_parents_rows_under_a_new_child() {
        let (_dir, cat) = catalog();
        let p = target_with(&cat, "/p", PARENT_FILES, false);
        cat.add_linked_targets(&[b"/p/c"], false, ParentFiles::Exclude).unwrap();
        assert_eq!(parent(&cat, "/p/c").as_deref(), Some("/p"));
        assert_eq!(files(&cat, p), ["cx", "pf"], "the parent's tar will exclude /p/c");
        assert_eq!(cat.target_file_count(p).unwrap(), 2);
    }

    #[test]
    fn import_links_a_child_listed_before_its_parent() {
        let (_dir, cat) = catalog();
        cat.add_linked_targets(&[b"/p/a/c", b"/p", b"/q"], false, ParentFiles::Exclude).unwrap();
        assert_eq!(parent(&cat, "/p/a/c").as_deref(), Some("/p"));
        assert_eq!(parent(&cat, "/p"), None);
        assert_eq!(parent(&cat, "/q"), None);
    }

    #[test]
    fn import_links_a_legacy_child_below_a_parent_on_tape_and_keeps_the_parents_rows() {
        let (_dir, cat) = catalog();
        // As the old tool left them: /p/c imported first, then /p, unlinked;
        // /p archived with c's files, /q scanned with rows under /q/d.
        let p = target_with(&cat, "/p", PARENT_FILES, true);
        let q = target_with(&cat, "/q", &["d/f", "qf"], false);
        cat.conn.execute("INSERT INTO targets (name, scanned) VALUES ('/p/c', 1), ('/q/d', 1)", []).unwrap();
        cat.add_linked_targets(&[b"/r"], false, ParentFiles::Exclude).unwrap();
        assert_eq!(parent(&cat, "/p/c").as_deref(), Some("/p"));
        assert_eq!(files(&cat, p), PARENT_FILES, "the parent's tape file holds c's files");
        assert_eq!(parent(&cat, "/q/d").as_deref(), Some("/q"));
        assert_eq!(files(&cat, q), ["qf"], "the parent's tar will exclude /q/d");
    }

    #[test]
    fn a_rebuild_keeps_the_rows_of_a_parent_on_tape() {
        let (_dir, cat) = catalog();
        let p = target_with(&cat, "/p", PARENT_FILES, true);
        let c = target_with(&cat, "/p/c", &["f"], true);
        assert_eq!(parent(&cat, "/p/c").as_deref(), Some("/p"));
        assert_eq!(files(&cat, p), PARENT_FILES, "the parent's tape file, written before /p/c was a target");
        assert_eq!(files(&cat, c), ["f"]);
    }

    #[test]
    fn adopting_below_a_parent_not_yet_on_tape_drops_its_rows_there() {
        let (_dir, cat) = catalog();
        let p = target_with(&cat, "/p", PARENT_FILES, false);
        target_with(&cat, "/p/c", &["f"], true);
        assert_eq!(files(&cat, p), ["cx", "pf"], "the parent's tar will exclude /p/c");
    }

    #[test]
    fn a_target_recorded_between_a_parent_and_its_child_takes_the_child() {
        let (_dir, cat) = catalog();
        target_with(&cat, "/a", &["x"], true);
        target_with(&cat, "/a/b/c", &["y"], true);
        target_with(&cat, "/z/d", &["y"], true);
        assert_eq!(parent(&cat, "/a/b/c").as_deref(), Some("/a"));
        target_with(&cat, "/a/b", &["c/y", "w"], true);
        assert_eq!(parent(&cat, "/a/b/c").as_deref(), Some("/a/b"));
        assert_eq!(parent(&cat, "/a/b").as_deref(), Some("/a"));
        target_with(&cat, "/z", &[], true);
        assert_eq!(parent(&cat, "/z/d").as_deref(), Some("/z"), "an unlinked target below is taken too");
    }

    #[test]
    fn inside_a_recovery_the_insert_rolls_back_with_it() {
        let (_dir, cat) = catalog();
        let tx = cat.begin_recovery().unwrap();
        cat.add_linked_targets(&[b"/p"], true, ParentFiles::AsWritten).unwrap();
        drop(tx);
        assert_eq!(cat.target_by_name(b"/p").unwrap(), None);
    }
}
