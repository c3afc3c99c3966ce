-- Where the follower of PowerMTA's accounting file is: per path, the file it reads (its
-- inode: a rotation gives the path a new one), how far it has read, and the file's header
-- line. A crash between applying lines and saving the offset reads them again; their
-- dedupe keys (inode and offset) make them count once.
CREATE TABLE feedback_files (
    path TEXT PRIMARY KEY,
    inode BIGINT NOT NULL,
    read_to BIGINT NOT NULL,
    header TEXT,
    -- A digest of the file's first bytes (up to 1 KiB of what was read): a file replaced
    -- or cut short in place (copytruncate) under the same inode no longer matches it.
    fingerprint TEXT,
    updated_at BIGINT NOT NULL
);
